"""Typed values from the raw text of an HTML field: int, decimal, date, datetime.

``convert`` applies a field's regex and map, then its type; numbers may carry thousands
separators, dates a board's own format (the rule's formats, else ISO 8601 and the defaults
below). Date formats are compiled once per process. Pure Python (no Django).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from crawls.engine.rules import FieldRule

DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y.%m.%d",
    "%Y/%m/%d",
    "%Y년 %m월 %d일",
    "%Y년%m월%d일",
    "%d %b %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
# Tried after ISO 8601 (datetime.fromisoformat); a date alone (DATE_FORMATS) means 00:00.
DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d. %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
)

# One number: digits with optional thousands groups (comma or space) and decimals.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:[,\s]\d{3})+(?!\d)|\d+)(?:\.\d+)?")
# strptime directives a format may be compiled from (see _compiled); strptime does the rest.
_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})",
    "m": r"(?P<m>\d{1,2})",
    "d": r"(?P<d>\d{1,2})",
    "H": r"(?P<H>\d{1,2})",
    "M": r"(?P<M>\d{1,2})",
    "S": r"(?P<S>\d{1,2})",
}


def convert(raw: str, rule: FieldRule, tz: ZoneInfo) -> object:
    """Turn an element's raw text into the rule's type; ValueError says why it cannot."""
    text = " ".join(raw.split())
    if rule.regex is not None:
        match = rule.regex.search(text)
        if match is None:
            raise ValueError(f"regex {rule.regex.pattern!r} does not match {_show(text)}")
        kept = match.group(1) if rule.regex.groups else match.group(0)
        text = " ".join((kept or "").split())
    for key, replacement in rule.map:  # bounded (Limits.entries); unmapped values are kept
        if key == text:
            text = replacement
            break
    if rule.type == "text":
        return text
    if not text:
        raise ValueError(f"cannot read an empty value as {rule.type}")
    if rule.type == "int":
        number = _number(text, "int")
        if number != number.to_integral_value():
            raise ValueError(f"cannot read {_show(text)} as int: {number} is not a whole number")
        return int(number)
    if rule.type == "decimal":
        return _number(text, "decimal")
    if rule.type == "date":
        parsed = _when(text, rule.formats, DATE_FORMATS + DATETIME_FORMATS, "date")
        return (parsed.astimezone(tz) if parsed.tzinfo is not None else parsed).date()
    parsed = _when(text, rule.formats, DATETIME_FORMATS + DATE_FORMATS, "datetime")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _number(text: str, kind: str) -> Decimal:
    found = _NUMBER.findall(text)
    if not found:
        raise ValueError(f"cannot read {_show(text)} as {kind}: no number in it")
    if len(found) > 1:
        raise ValueError(
            f"cannot read {_show(text)} as {kind}: several numbers ({', '.join(found)}); "
            f"add a regex with one group to pick one"
        )
    return Decimal("".join(found[0].replace(",", "").split()))


def _when(text: str, formats: tuple[str, ...], defaults: tuple[str, ...], kind: str) -> datetime:
    """Parse with the rule's formats, else ISO 8601 and then the defaults; naive or aware."""
    text = text.rstrip(".").rstrip()  # "2026.11.23."
    if not formats:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    for fmt in formats or defaults:
        pattern = _compiled(fmt)
        try:
            if pattern is None:
                # Naive on purpose: convert() localises it in the rules' time zone.
                return datetime.strptime(text, fmt)  # noqa: DTZ007
            if match := pattern.fullmatch(text):
                parts = match.groupdict()
                return datetime(  # noqa: DTZ001 - naive on purpose, as above
                    int(parts["Y"]),
                    int(parts["m"]),
                    int(parts["d"]),
                    int(parts.get("H") or 0),
                    int(parts.get("M") or 0),
                    int(parts.get("S") or 0),
                )
        except ValueError:
            continue
    tried = list(formats) if formats else ["ISO 8601", *defaults]
    raise ValueError(f"cannot read {_show(text)} as {kind} with formats {tried}")


@lru_cache(maxsize=1024)
def _compiled(fmt: str) -> re.Pattern[str] | None:
    """A regex reading fmt like strptime does, when fmt has only %Y %m %d %H %M %S; else None.

    strptime spends microseconds per format in Python; the numeric formats boards use (and most
    defaults) are matched this way instead, compiled once per process.
    """
    pieces, used = [], set()
    for piece in re.split(r"(%.)", fmt):
        if len(piece) == 2 and piece[0] == "%":
            directive = piece[1]
            if directive not in _DIRECTIVES or directive in used:
                return None
            used.add(directive)
            pieces.append(_DIRECTIVES[directive])
        elif "%" in piece:
            return None
        else:
            # As strptime: any run of whitespace in the format matches one or more in the text.
            pieces.append(r"\s+".join(re.escape(word) for word in re.split(r"\s+", piece)))
    if not {"Y", "m", "d"} <= used:
        return None
    return re.compile("".join(pieces), re.IGNORECASE)
