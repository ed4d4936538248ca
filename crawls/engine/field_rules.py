"""Field rules of HTML sources: which bid fields there are and the types they may have, and how to
read one field from a detail page (a CSS selector, an attribute, a type, date formats, a regex, a
map, required), checked into ``FieldRule`` and kept in a ``FieldMap``. The API sources' fields
(crawls.engine.api_field_rules) build on FieldRule. Pure Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from crawls.engine import patterns
from crawls.engine import rule_checks as checks
from crawls.engine.rule_limits import Limits

BID_FIELDS: tuple[str, ...] = (
    "title",
    "department",
    "views",
    "post_date",
    "amount",
    "deadline",
    "reference",
    "currency",
    "status",
    "procurement_method",
    "classifications",
)
TYPES: tuple[str, ...] = ("text", "int", "decimal", "date", "datetime")
# The types a known bid field may have; the first one is its default.
BID_FIELD_TYPES: Mapping[str, tuple[str, ...]] = {
    "title": ("text",),
    "department": ("text",),
    "reference": ("text",),
    "views": ("int",),
    "amount": ("decimal",),
    "post_date": ("date",),
    "deadline": ("datetime", "date"),
    # Read as text; stored normalised (crawls.engine.normalize): an ISO 4217 code, one of the
    # statuses, "SCHEME:ID" codes.
    "currency": ("text",),
    "status": ("text",),
    "procurement_method": ("text",),
    "classifications": ("text",),
}
_FIELD_KEYS = ("css", "attr", "type", "formats", "regex", "required", "map")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_ATTR = re.compile(r"[^\s\"'>/=]+")


@dataclass(frozen=True)
class FieldRule:
    """How to read one field from a detail page."""

    name: str
    css: str
    attr: str | None
    type: str
    formats: tuple[str, ...]  # empty: the converter's defaults for the type
    regex: patterns.Regex | None
    required: bool
    # Text → text after the regex, before the type conversion; unmapped values are kept.
    map: tuple[tuple[str, str], ...] = ()


class FieldMap(Mapping[str, FieldRule]):
    """Read-only, hashable and picklable name → FieldRule mapping (keeps the given order)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, FieldRule] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> FieldRule:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FieldMap({self._data!r})"

    def __getstate__(self) -> dict[str, FieldRule]:
        return self._data

    def __setstate__(self, state: dict[str, FieldRule]) -> None:
        self._data = state


def field_dump(rule: FieldRule) -> dict[str, object]:
    dumped: dict[str, object] = {
        "css": rule.css,
        "attr": rule.attr,
        "type": rule.type,
        "formats": list(rule.formats),
        "regex": rule.regex.pattern if rule.regex is not None else None,
        "required": rule.required,
    }
    if rule.map:  # only when given: the dump of rules without maps stays as it was
        dumped["map"] = dict(rule.map)
    return dumped


def fields_parse(
    value: object, probe: LexborHTMLParser, limits: Limits, errors: dict[str, str]
) -> dict[str, FieldRule]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors["fields"] = (
            f"fields must be an object mapping field names to CSS selectors or field specs, "
            f"not {checks.kind(value)}"
        )
        return {}
    if len(value) > limits.fields:
        errors["fields"] = f"fields has {len(value)} fields; at most {limits.fields} are allowed"
        return {}
    fields = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            errors[f"fields.{name}"] = (
                f"field name {name!r} must be a lowercase identifier "
                f"(a-z, 0-9 and _, not starting with a digit)"
            )
            continue
        rule = _field(name, spec, probe, limits, errors)
        if rule is not None:
            fields[name] = rule
    if value and "title" not in value:
        errors["fields.title"] = "a title field is required: every item needs a title"
    return fields


def _field(
    name: str, spec: object, probe: LexborHTMLParser, limits: Limits, errors: dict[str, str]
) -> FieldRule | None:
    path = f"fields.{name}"
    if isinstance(spec, str):
        spec = {"css": spec}
    elif not isinstance(spec, Mapping):
        errors[path] = (
            f"{name} must be a CSS selector string or an object with "
            f"{', '.join(_FIELD_KEYS)}; not {checks.kind(spec)}"
        )
        return None
    before = len(errors)
    for key in spec:
        if key not in _FIELD_KEYS:
            errors[f"{path}.{key}"] = (
                f"unknown key {key!r} in {name}; expected one of: {', '.join(_FIELD_KEYS)}"
            )

    css = spec.get("css")
    if css is None:
        errors[f"{path}.css"] = f"{name} needs a css selector"
    elif problem := checks.selector_problem(css, probe, limits.selector_length):
        errors[f"{path}.css"] = problem

    attr = spec.get("attr")
    if attr is not None and (not isinstance(attr, str) or not _ATTR.fullmatch(attr.strip())):
        shown = repr(attr) if isinstance(attr, str) else checks.kind(attr)
        errors[f"{path}.attr"] = (
            f"{name}.attr must be an attribute name such as 'href' or 'content', not {shown}"
        )

    allowed = BID_FIELD_TYPES.get(name)
    # Known bid fields default to their own type, so {"views": "td.hits"} just works.
    type_ = spec.get("type", allowed[0] if allowed else "text")
    if not isinstance(type_, str) or type_ not in TYPES:
        errors[f"{path}.type"] = f"{name}.type must be one of {', '.join(TYPES)}; not {type_!r}"
    elif allowed and type_ not in allowed:
        errors[f"{path}.type"] = f"{name} must be {' or '.join(allowed)}, not {type_!r}"

    formats = spec.get("formats")
    if formats is None:
        formats = []
    if not isinstance(formats, list | tuple):
        errors[f"{path}.formats"] = (
            f"{name}.formats must be a list of strptime formats such as '%Y-%m-%d', "
            f"not {checks.kind(formats)}"
        )
        formats = []
    elif formats and type_ in TYPES and type_ not in ("date", "datetime"):
        errors[f"{path}.formats"] = (
            f"formats only apply to date and datetime fields; {name} is {type_!r}"
        )
    else:
        for index, fmt in enumerate(formats):
            if problem := checks.format_problem(fmt):
                errors[f"{path}.formats[{index}]"] = problem

    regex = spec.get("regex")
    pattern = None
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            errors[f"{path}.regex"] = (
                f"{name}.regex must be a non-empty regular expression string, "
                f"not {checks.kind(regex)}"
            )
        else:
            pattern, problem = checks.regex_problem(regex, limits.regex_length)
            if problem is not None:
                errors[f"{path}.regex"] = f"{name}.regex {problem}"
            elif pattern is not None and pattern.groups > 1:
                errors[f"{path}.regex"] = (
                    f"{name}.regex {regex!r} has {pattern.groups} groups; use at most one "
                    f"(the part to keep) and (?:...) for the others"
                )

    mapping = _map(spec.get("map"), path, limits, errors)

    required = spec.get("required", name == "title")
    if not isinstance(required, bool):
        errors[f"{path}.required"] = (
            f"{name}.required must be true or false, not {checks.kind(required)}"
        )
    elif name == "title" and not required:
        errors[f"{path}.required"] = "title must be required: every item needs a title"

    if len(errors) > before:
        return None
    assert isinstance(css, str)  # noqa: S101 - selector_problem checked it
    return FieldRule(
        name=name,
        css=css.strip(),
        attr=attr.strip().lower() if attr is not None else None,
        type=type_,
        formats=tuple(formats),
        regex=pattern,
        required=required is True,  # a bool: checked above
        map=mapping,
    )


def _map(
    value: object, path: str, limits: Limits, errors: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """A field's map as (text, replacement) pairs, keys with their whitespace collapsed as the
    values they are compared with."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        errors[f"{path}.map"] = (
            f"map must be an object of texts to replacements such as "
            f'{{"공고중": "active"}}, not {checks.kind(value)}'
        )
        return ()
    if len(value) > limits.entries:
        errors[f"{path}.map"] = (
            f"map has {len(value)} entries; at most {limits.entries} are allowed"
        )
        return ()
    pairs: dict[str, str] = {}
    for key, replacement in value.items():
        where = f"{path}.map.{key}"
        if not isinstance(replacement, str):
            errors[where] = f"expected the replacement text, not {checks.kind(replacement)}"
        elif len(key) > limits.selector_length or len(replacement) > limits.selector_length:
            errors[where] = f"texts in a map are at most {limits.selector_length} characters"
        else:
            pairs[" ".join(key.split())] = replacement
    return tuple(pairs.items())
