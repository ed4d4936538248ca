"""Extraction rules: user-supplied JSON that says what to crawl and what to read.

``rules_parse`` validates the JSON and turns it into an immutable ``Rules``; it reports every
problem at once in ``RulesError.errors``, keyed by path ("fields.views.type", "follow[1]"), so an
API can answer with all of them. ``rules_dump`` gives the canonical JSON form back. Sizes are
bounded (``Limits``, from the RULES_MAX_* settings) and regexes run on RE2 (``patterns``), so no
rules can make extraction stall. Shared by the engine, the API and the preview service. The
checks of single values (a selector, a regex, a date format) are in ``rule_checks``; the
object form of follow/items entries (links and requests built from any attribute through a
pattern) is ``link_rules``. A field may carry a ``map`` (text → text, after its regex).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from selectolax.lexbor import LexborHTMLParser

from crawls.engine import link_rules, patterns
from crawls.engine import rule_checks as checks
from crawls.engine.link_rules import LinkRule

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
ROOT = "rules"  # error key for problems with the document as a whole

_TOP_KEYS = ("follow", "items", "fields", "timezone", "ignore_params")
_FIELD_KEYS = ("css", "attr", "type", "formats", "regex", "required", "map")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_ATTR = re.compile(r"[^\s\"'>/=]+")


@dataclass(frozen=True)
class Limits:
    """Bounds on what rules may ask for (defaults as in project/settings.py)."""

    regex_length: int = 1000
    selector_length: int = 1000
    fields: int = 50
    selectors: int = 20  # follow and items, each
    patterns: int = 20  # a source's include_patterns and exclude_patterns, each
    # Entries of a request template's form/query/headers (and of each JSON object or list in
    # its body) and of a field's map. Not a setting: 50 is plenty, and bounds the work.
    entries: int = 50

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            regex_length=settings.RULES_MAX_REGEX_LENGTH,
            selector_length=settings.RULES_MAX_SELECTOR_LENGTH,
            fields=settings.RULES_MAX_FIELDS,
            selectors=settings.RULES_MAX_SELECTORS,
            patterns=settings.RULES_MAX_PATTERNS,
        )


class RulesError(ValueError):
    """Invalid rules; ``errors`` maps each problem's path to a message naming what is expected."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors.items()))


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


@dataclass(frozen=True)
class Rules:
    """Validated, normalised extraction rules."""

    # A CSS selector (links by href, the fast path) or a LinkRule (crawls.engine.link_rules).
    follow: tuple[str | LinkRule, ...]
    items: tuple[str | LinkRule, ...]
    fields: Mapping[str, FieldRule]
    timezone: ZoneInfo
    ignore_params: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.fields, FieldMap):  # Rules built by hand stay immutable too
            object.__setattr__(self, "fields", FieldMap(self.fields))


def rules_parse(data: object, *, limits: Limits | None = None) -> Rules:
    """Validate and normalise rules JSON; raise RulesError listing every problem."""
    limits = limits or Limits.from_settings()
    if not isinstance(data, Mapping):
        raise RulesError({ROOT: f"rules must be a JSON object, not {checks.kind(data)}"})
    errors: dict[str, str] = {}
    for key in data:
        if key not in _TOP_KEYS:
            errors[str(key)] = f"unknown key {key!r}; expected one of: {', '.join(_TOP_KEYS)}"
    # One throwaway document per call: a selectolax parser is not thread-safe.
    probe = LexborHTMLParser("<p></p>")
    follow = _selectors(data, "follow", probe, limits, errors)
    items = _selectors(data, "items", probe, limits, errors)
    fields = _fields(data.get("fields"), probe, limits, errors)
    timezone = _timezone(data.get("timezone", "UTC"), errors)
    ignore_params = _ignore_params(data.get("ignore_params"), errors)
    if not (data.get("follow") or data.get("items") or data.get("fields")):
        errors[ROOT] = "nothing to do: give at least one of follow, items or fields"
    if errors or timezone is None:
        raise RulesError(errors)
    return Rules(follow, items, FieldMap(fields), timezone, ignore_params)


def rules_dump(rules: Rules) -> dict:
    """The canonical JSON form of rules: every key present, fields in full."""
    return {
        "follow": [_entry_dump(entry) for entry in rules.follow],
        "items": [_entry_dump(entry) for entry in rules.items],
        "fields": {name: _field_dump(rule) for name, rule in rules.fields.items()},
        "timezone": rules.timezone.key,
        "ignore_params": list(rules.ignore_params),
    }


def _entry_dump(entry: str | LinkRule) -> str | dict[str, object]:
    return entry if isinstance(entry, str) else link_rules.link_dump(entry)


def _field_dump(rule: FieldRule) -> dict[str, object]:
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


def patterns_check(name: str, values: object, *, limits: Limits | None = None) -> dict[str, str]:
    """Problems with a source's include/exclude URL patterns, keyed by path ("name[0]")."""
    limits = limits or Limits.from_settings()
    if not isinstance(values, list | tuple):
        return {name: f"{name} must be a list of regular expressions, not {checks.kind(values)}"}
    if len(values) > limits.patterns:
        return {name: f"{name} has {len(values)} patterns; at most {limits.patterns} are allowed"}
    errors = {}
    for index, value in enumerate(values):
        if problem := checks.regex_problem(value, limits.regex_length)[1]:
            errors[f"{name}[{index}]"] = problem
    return errors


def _selectors(
    data: Mapping, key: str, probe: LexborHTMLParser, limits: Limits, errors: dict[str, str]
) -> tuple[str | LinkRule, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors[key] = f"{key} must be a list of CSS selectors, not {checks.kind(value)}"
        return ()
    if len(value) > limits.selectors:
        errors[key] = f"{key} has {len(value)} selectors; at most {limits.selectors} are allowed"
        return ()
    selectors: list[str | LinkRule] = []
    for index, selector in enumerate(value):
        if isinstance(selector, Mapping):
            entry = link_rules.link_parse(selector, f"{key}[{index}]", probe, limits, errors)
            if entry is not None:
                selectors.append(entry)
            continue
        problem = checks.selector_problem(selector, probe, limits.selector_length)
        if problem is None:
            selectors.append(selector.strip())
        else:
            errors[f"{key}[{index}]"] = problem
    return tuple(selectors)


def _fields(
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
    return FieldRule(
        name=name,
        css=css.strip(),
        attr=attr.strip().lower() if attr is not None else None,
        type=type_,
        formats=tuple(formats),
        regex=pattern,
        required=required,
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


def _timezone(value: object, errors: dict[str, str]) -> ZoneInfo | None:
    if not isinstance(value, str) or not value.strip():
        shown = repr(value) if isinstance(value, str) else checks.kind(value)
        errors["timezone"] = (
            f"timezone must be an IANA time zone name such as 'Asia/Seoul', not {shown}"
        )
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = (
            f"unknown time zone {value!r}; expected an IANA name such as 'Asia/Seoul' or 'UTC'"
        )
        return None


def _ignore_params(value: object, errors: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors["ignore_params"] = (
            f"ignore_params must be a list of query parameter names, not {checks.kind(value)}"
        )
        return ()
    params: list[str] = []
    for index, param in enumerate(value):
        if not isinstance(param, str) or not param.strip():
            shown = repr(param) if isinstance(param, str) else checks.kind(param)
            errors[f"ignore_params[{index}]"] = (
                f"expected a query parameter name such as 'utm_source', not {shown}"
            )
        elif param.strip() not in params:
            params.append(param.strip())
    return tuple(params)
