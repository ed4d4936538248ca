"""Items of a JSON or XML API response read into records: the key, each field through its path,
type, regex and map, the notice's link. Pure Python (no Django).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from zoneinfo import ZoneInfo

from crawls.engine import api_docs as docs
from crawls.engine import values
from crawls.engine.api_rules import ApiField, ApiRules
from crawls.engine.extract import Record

CLASSIFICATIONS = "classifications"  # the field whose list value stays a list


def record(
    doc: docs.Doc, item: object, rules: ApiRules, url: str
) -> tuple[Record | None, str | None]:
    """The item as a Record; else None and why it is left out."""
    if isinstance(doc, docs.JsonDoc) and not isinstance(item, dict):
        return None, f"the item is {docs.kind_of(item)}, not an object"
    parts = []
    for path in rules.key:
        try:
            part = docs.text(doc.one(path, item))
        except ValueError as exc:
            return None, f"no key: {exc}"
        if not part:
            return None, f"no key: {path!r} gives nothing"
        parts.append(part)
    key = "/".join(parts)
    fields: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name, rule in rules.fields.items():
        value, problem = _field(doc, item, rule, rules.timezone)
        if problem is not None and rule.required:
            return None, f"{key}: {problem}"
        fields[name] = value
        if problem is not None:
            errors[name] = problem
    link = ""
    if rules.link is not None:
        with contextlib.suppress(ValueError):
            link = docs.absolute(docs.text(doc.one(rules.link, item)), url) or ""
    return Record(key=key, fields=fields, errors=errors, url=link), None


def _field(doc: docs.Doc, item: object, rule: ApiField, tz: ZoneInfo) -> tuple[object, str | None]:
    """One field's value and problem (None when fine)."""
    try:
        if rule.name == CLASSIFICATIONS:
            return _list(doc.many(rule.path, item), rule, tz)
        raw = doc.one(rule.path, item)
    except ValueError as exc:
        return None, str(exc)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, (
            f"required field {rule.name} not found: {rule.path!r} gives nothing"
            if rule.required
            else None
        )
    try:
        value = _convert(raw, rule, tz)
    except ValueError as exc:
        return None, str(exc)
    if value == "":
        return None, (f"required field {rule.name} is empty" if rule.required else None)
    return value, None


def _list(raws: list[object], rule: ApiField, tz: ZoneInfo) -> tuple[object, str | None]:
    """A list of values (classification codes): objects as they are, the rest as text."""
    values: list[object] = []
    for raw in raws:
        if isinstance(raw, dict):
            values.append(raw)
        elif raw is not None and not isinstance(raw, list) and (text := docs.text(raw)):
            try:
                converted = _convert(text, rule, tz)
            except ValueError as exc:
                return None, str(exc)
            if converted != "":
                values.append(converted)
    if not values:
        return None, (
            f"required field {rule.name} not found: {rule.path!r} gives nothing"
            if rule.required
            else None
        )
    return values, None


def _convert(raw: object, rule: ApiField, tz: ZoneInfo) -> object:
    """A value of the response as the rule's type: numbers stay exact, text goes through
    values.convert like an HTML field's."""
    plain = rule.regex is None and not rule.map and rule.type in ("int", "decimal")
    if plain and isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        number = Decimal(raw)
        if rule.type == "decimal":
            return number
        if number != number.to_integral_value():
            raise ValueError(f"cannot read {raw} as int: it is not a whole number")
        return int(number)
    return values.convert(docs.text(raw), rule, tz)  # regex, then map, then the type
