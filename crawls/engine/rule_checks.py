"""Checks of single values in extraction rules: a CSS selector, a regex, a strptime format.

Each returns what is wrong, in words that say what is expected, or None; ``crawls.engine.rules``
puts the messages under their paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from crawls.engine import patterns

_HAS = re.compile(r":has\(", re.IGNORECASE)
# An aware sample, so that formats with %z/%Z can round-trip too.
_SAMPLE = datetime(2026, 11, 23, 14, 5, 9, tzinfo=UTC)


def kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def regex_problem(value: object, max_length: int) -> tuple[patterns.Regex | None, str | None]:
    """(the compiled pattern, None) or (None, what is wrong with it)."""
    if not isinstance(value, str) or not value:
        return None, f"must be a non-empty regular expression string, not {kind(value)}"
    if len(value) > max_length:
        return None, f"is {len(value)} characters long; at most {max_length} are allowed"
    try:
        return patterns.Regex(value), None
    except patterns.PatternError as exc:
        joint = " " if str(exc).startswith("does not compile") else ": "
        return None, f"{value!r}{joint}{exc}"


def selector_problem(selector: object, probe: LexborHTMLParser, max_length: int) -> str | None:
    """What is wrong with a CSS selector (tried on `probe`), or None."""
    if not isinstance(selector, str) or not selector.strip():
        shown = repr(selector) if isinstance(selector, str) else kind(selector)
        return f"expected a non-empty CSS selector string, not {shown}"
    if len(selector) > max_length:
        return f"CSS selector is {len(selector)} characters long; at most {max_length} are allowed"
    if _HAS.search(selector) and has_nested(selector):
        # lexbor re-searches the subtree at each level: nested :has() grows with depth^levels.
        return f"nested :has() in {selector!r} is not supported; use one :has() per selector"
    try:
        probe.css(selector)
    except SelectolaxError:
        # selectolax only says "Can't parse CSS selector.", so say what is expected instead.
        return f"invalid CSS selector {selector!r}: expected a CSS selector such as 'td.subject a'"
    return None


def has_nested(selector: str) -> bool:
    """Whether a :has( opens inside another :has( (parentheses counted)."""
    depth_at_has: list[int] = []
    depth = 0
    for index, char in enumerate(selector):
        if char == "(":
            if selector[max(0, index - 4) : index].lower() == ":has":
                if depth_at_has:
                    return True
                depth_at_has.append(depth)
            depth += 1
        elif char == ")":
            depth -= 1
            if depth_at_has and depth == depth_at_has[-1]:
                depth_at_has.pop()
    return False


def format_problem(fmt: object) -> str | None:
    """What is wrong with a strptime format for dates, or None."""
    if not isinstance(fmt, str) or not fmt.strip():
        shown = repr(fmt) if isinstance(fmt, str) else kind(fmt)
        return f"expected a non-empty strptime format such as '%Y-%m-%d', not {shown}"
    try:
        # Naive unless the format has %z: only the calendar date is compared.
        parsed = datetime.strptime(_SAMPLE.strftime(fmt), fmt)  # noqa: DTZ007
    except ValueError as exc:
        return f"format {fmt!r} cannot read back the dates it writes ({exc})"
    if parsed.date() != _SAMPLE.date():
        return f"format {fmt!r} must give the year, month and day, such as '%Y.%m.%d'"
    return None
