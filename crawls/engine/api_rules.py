"""Rules of JSON and XML API sources: the request template (crawls.engine.api_requests), where
the items are, what to read from each, how to page and how the publisher says something went
wrong.

``rules_parse`` validates a rules document (the json/xml contract in docs) and returns an
immutable, picklable ``ApiRules``; like ``crawls.engine.rules`` it reports every problem at once
in ``RulesError.errors``, keyed by path ("fields.amount.path", "pagination.style",
"request.query.pageNo"). Paths are JMESPath (json) or XPath 1.0 (xml), compiled here to be
checked and again (once per process, cached) by the reader. ``start_requests`` builds a crawl's
seeds. Pure Python (no Django).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jmespath  # type: ignore[import-untyped]
import jmespath.exceptions  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from crawls.engine import api_requests, rules
from crawls.engine import rule_checks as checks
from crawls.engine.api_requests import MAX_PAGES, Pagination, RequestTemplate
from crawls.engine.request import Request
from crawls.engine.rules import Limits, RulesError

JSON, XML = "json", "xml"
STYLES = ("page", "offset", "next", "cursor", "link", "none")
MAX_PAGES_LIMIT = 100_000  # the largest max_pages rules may ask for
MAX_MAP = 200  # entries of one field's map
ROOT = rules.ROOT

_TOP_KEYS = ("request", "items", "key", "link", "fields", "pagination", "error", "timezone")
_FIELD_KEYS = ("path", "type", "formats", "regex", "required", "map")
_PAGINATION_KEYS = ("style", "start", "size", "total", "max_pages", "next", "cursor")
_ERROR_KEYS = ("when", "ok", "message")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class ApiField(rules.FieldRule):
    """How to read one field of an item: a path instead of a CSS selector (css stays "")."""

    path: str = ""
    map: tuple[tuple[str, str], ...] = ()  # after the regex; unmapped values are kept


@dataclass(frozen=True)
class ErrorEnvelope:
    when: str
    ok: tuple[str, ...] = ()  # empty: any non-empty value of `when` is an error
    message: tuple[str, ...] = ()  # paths; their values joined with ": "


@dataclass(frozen=True)
class ApiRules:
    """Validated rules of a json or xml source."""

    kind: str  # "json" or "xml"
    request: RequestTemplate = field(default_factory=RequestTemplate)
    items: str = ""
    key: tuple[str, ...] = ()
    link: str | None = None
    fields: Mapping[str, ApiField] = field(default_factory=dict)  # kept as a rules.FieldMap
    pagination: Pagination = field(default_factory=Pagination)
    error: ErrorEnvelope | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def __post_init__(self) -> None:
        if not isinstance(self.fields, rules.FieldMap):
            object.__setattr__(self, "fields", rules.FieldMap(self.fields))


# --- compiled paths (once per process: lxml's XPath objects do not pickle) ---------------------


@lru_cache(maxsize=512)
def jmespath_compiled(path: str) -> Any:
    return jmespath.compile(path)


@lru_cache(maxsize=512)
def xpath_compiled(path: str) -> etree.XPath:
    return etree.XPath(path, smart_strings=False)


_PROBE = b"<probe a='1'><x>1</x></probe>"


def path_problem(path: object, kind: str, max_length: int) -> str | None:
    """What is wrong with a JMESPath (json) or XPath (xml) expression, or None."""
    language = "JMESPath expression" if kind == JSON else "XPath expression"
    example = "'response.body.items.item'" if kind == JSON else "'//items/item'"
    if not isinstance(path, str) or not path.strip():
        shown = repr(path) if isinstance(path, str) else checks.kind(path)
        return f"expected a non-empty {language} such as {example}, not {shown}"
    if len(path) > max_length:
        return f"{language} is {len(path)} characters long; at most {max_length} are allowed"
    if kind == JSON:
        try:
            jmespath_compiled(path.strip())
        except jmespath.exceptions.JMESPathError as exc:
            return f"invalid {language} {path!r}: {' '.join(str(exc).split())}"
        return None
    try:
        compiled = xpath_compiled(path.strip())
        compiled(etree.fromstring(_PROBE))  # undefined variables and functions show up here
    except etree.XPathError as exc:
        return f"invalid {language} {path!r}: {exc}"
    return None


# --- parsing ------------------------------------------------------------------------------------


def rules_parse(data: object, *, kind: str, limits: Limits | None = None) -> ApiRules:
    """Validate and normalise json/xml rules; raise RulesError listing every problem."""
    if kind not in (JSON, XML):
        raise RulesError({"kind": f"API rules are for kind json or xml, not {kind!r}"})
    limits = limits or Limits.from_settings()
    if not isinstance(data, Mapping):
        raise RulesError({ROOT: f"rules must be a JSON object, not {checks.kind(data)}"})
    errors: dict[str, str] = {}
    for key in data:
        if key not in _TOP_KEYS:
            errors[str(key)] = f"unknown key {key!r}; expected one of: {', '.join(_TOP_KEYS)}"
    p = _Parser(kind, limits, errors)
    pagination = p.pagination(data.get("pagination"))
    request = p.request(data.get("request"), pagination)
    items = p.path("items", data.get("items"), required=True)
    key = p.key(data.get("key"))
    link = p.path("link", data["link"]) if data.get("link") is not None else None
    fields = p.fields(data.get("fields"))
    error = p.error(data.get("error"))
    timezone = rules._timezone(data.get("timezone", "UTC"), errors)
    if errors or timezone is None:
        raise RulesError(errors)
    return ApiRules(
        kind=kind,
        request=request,
        items=items or "",
        key=key,
        link=link,
        fields=fields,
        pagination=pagination,
        error=error,
        timezone=timezone,
    )


class _Parser:
    def __init__(self, kind: str, limits: Limits, errors: dict[str, str]) -> None:
        self.kind = kind
        self.limits = limits
        self.errors = errors

    def path(self, where: str, value: object, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                name = where.rpartition(".")[2]
                self.errors[where] = f"{name} is required: a path to {_WHAT.get(name, name)}"
            return None
        problem = path_problem(value, self.kind, self.limits.selector_length)
        if problem is not None:
            self.errors[where] = problem
            return None
        assert isinstance(value, str)  # noqa: S101 - path_problem checked it
        return value.strip()

    def key(self, value: object) -> tuple[str, ...]:
        if value is None:
            self.errors["key"] = (
                "key is required: a path (or a list of paths) to the item's identity, "
                "such as the notice number"
            )
            return ()
        if isinstance(value, str):
            return (path,) if (path := self.path("key", value)) else ()
        if not isinstance(value, list | tuple) or not value or len(value) > 9:
            self.errors["key"] = (
                f"key must be a path or a list of 1 to 9 paths, not {checks.kind(value)}"
            )
            return ()
        paths = [self.path(f"key[{index}]", item) for index, item in enumerate(value)]
        return tuple(p for p in paths if p)

    # request ---------------------------------------------------------------------------------

    def request(self, value: object, pagination: Pagination) -> RequestTemplate:
        return api_requests.template_parse(value, pagination, self.limits, self.errors)

    # fields ----------------------------------------------------------------------------------

    def fields(self, value: object) -> dict[str, ApiField]:
        if value is None:
            self.errors["fields"] = "fields are required: at least a title"
            return {}
        if not isinstance(value, Mapping):
            self.errors["fields"] = (
                f"fields must be an object mapping field names to paths or field specs, "
                f"not {checks.kind(value)}"
            )
            return {}
        if len(value) > self.limits.fields:
            self.errors["fields"] = (
                f"fields has {len(value)} fields; at most {self.limits.fields} are allowed"
            )
            return {}
        fields = {}
        for name, spec in value.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.errors[f"fields.{name}"] = (
                    f"field name {name!r} must be a lowercase identifier "
                    f"(a-z, 0-9 and _, not starting with a digit)"
                )
                continue
            rule = self.field(name, spec)
            if rule is not None:
                fields[name] = rule
        if "title" not in value:
            self.errors["fields.title"] = "a title field is required: every item needs a title"
        return fields

    def field(self, name: str, spec: object) -> ApiField | None:
        where = f"fields.{name}"
        errors = self.errors
        if isinstance(spec, str):
            spec = {"path": spec}
        elif not isinstance(spec, Mapping):
            errors[where] = (
                f"{name} must be a path string or an object with {', '.join(_FIELD_KEYS)}; "
                f"not {checks.kind(spec)}"
            )
            return None
        before = len(errors)
        for key in spec:
            if key not in _FIELD_KEYS:
                errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in {name}; expected one of: {', '.join(_FIELD_KEYS)}"
                )
        path = self.path(f"{where}.path", spec.get("path"), required=True)

        allowed = rules.BID_FIELD_TYPES.get(name)
        type_ = spec.get("type", allowed[0] if allowed else "text")
        if not isinstance(type_, str) or type_ not in rules.TYPES:
            errors[f"{where}.type"] = (
                f"{name}.type must be one of {', '.join(rules.TYPES)}; not {type_!r}"
            )
        elif allowed and type_ not in allowed:
            errors[f"{where}.type"] = f"{name} must be {' or '.join(allowed)}, not {type_!r}"

        formats = spec.get("formats") or []
        if not isinstance(formats, list | tuple):
            errors[f"{where}.formats"] = (
                f"{name}.formats must be a list of strptime formats such as '%Y-%m-%d', "
                f"not {checks.kind(formats)}"
            )
            formats = []
        elif formats and type_ in rules.TYPES and type_ not in ("date", "datetime"):
            errors[f"{where}.formats"] = (
                f"formats only apply to date and datetime fields; {name} is {type_!r}"
            )
        else:
            for index, fmt in enumerate(formats):
                if problem := checks.format_problem(fmt):
                    errors[f"{where}.formats[{index}]"] = problem

        pattern = None
        if (regex := spec.get("regex")) is not None:
            pattern, problem = checks.regex_problem(regex, self.limits.regex_length)
            if problem is not None:
                errors[f"{where}.regex"] = f"{name}.regex {problem}"
            elif pattern is not None and pattern.groups > 1:
                errors[f"{where}.regex"] = (
                    f"{name}.regex {regex!r} has {pattern.groups} groups; use at most one "
                    f"(the part to keep) and (?:...) for the others"
                )

        required = spec.get("required", name == "title")
        if not isinstance(required, bool):
            errors[f"{where}.required"] = (
                f"{name}.required must be true or false, not {checks.kind(required)}"
            )
        elif name == "title" and not required:
            errors[f"{where}.required"] = "title must be required: every item needs a title"

        mapping = self.map(f"{where}.map", spec.get("map"))
        if len(errors) > before or path is None:
            return None
        return ApiField(
            name=name,
            css="",
            attr=None,
            type=type_,
            formats=tuple(formats),
            regex=pattern,
            required=required is True,
            path=path,
            map=mapping,
        )

    def map(self, where: str, value: object) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"map must be an object of the publisher's values to yours, such as "
                f'{{"취소공고": "cancelled"}}; not {checks.kind(value)}'
            )
            return ()
        if len(value) > MAX_MAP:
            self.errors[where] = f"map has {len(value)} entries; at most {MAX_MAP} are allowed"
            return ()
        entries = []
        limit = self.limits.selector_length
        for source, target in value.items():
            if not isinstance(target, str) or len(target) > limit or len(str(source)) > limit:
                self.errors[f"{where}.{source}"] = (
                    f"map values must be strings of at most {limit} characters, "
                    f"not {checks.kind(target)}"
                )
                continue
            entries.append((" ".join(str(source).split()), target))
        return tuple(entries)

    # pagination and error envelope -----------------------------------------------------------

    def pagination(self, value: object) -> Pagination:
        where = "pagination"
        if value is None:
            return Pagination()
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"pagination must be an object with {', '.join(_PAGINATION_KEYS)}; "
                f"not {checks.kind(value)}"
            )
            return Pagination()
        before = len(self.errors)
        for key in value:
            if key not in _PAGINATION_KEYS:
                self.errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in pagination; expected one of: "
                    f"{', '.join(_PAGINATION_KEYS)}"
                )
        style = value.get("style", "none")
        if style not in STYLES:
            self.errors[f"{where}.style"] = (
                f"style must be one of {', '.join(STYLES)}; not {style!r}"
            )
            return Pagination()
        start_default = 0 if style == "offset" else 1
        start: int | None = start_default
        if style in ("page", "offset") and value.get("start") is not None:
            start = self._whole(f"{where}.start", value["start"], 0, 10**9)
        size = None
        if value.get("size") is not None:
            size = self._whole(f"{where}.size", value["size"], 1, 100_000)
        max_pages = self._whole(
            f"{where}.max_pages", value.get("max_pages", MAX_PAGES), 1, MAX_PAGES_LIMIT
        )
        paths = {}
        for key, styles in (
            ("total", ("page", "offset")),
            ("next", ("next",)),
            ("cursor", ("cursor",)),
        ):
            if value.get(key) is None:
                if styles == (style,) and key != "total":
                    self.errors[f"{where}.{key}"] = (
                        f"pagination style {style!r} needs {key}: a path to the {_WHAT[key]}"
                    )
                continue
            if style not in styles:
                self.errors[f"{where}.{key}"] = (
                    f"{key} only applies to pagination style {' or '.join(map(repr, styles))}, "
                    f"not {style!r}"
                )
                continue
            paths[key] = self.path(f"{where}.{key}", value[key])
        if style == "offset" and size is None:
            self.errors[f"{where}.size"] = "pagination style 'offset' needs size: the page size"
        if paths.get("total") and size is None:
            self.errors[f"{where}.size"] = (
                "total needs size: how many items a page holds, to count the pages"
            )
        if value.get("start") is not None and style not in ("page", "offset"):
            self.errors[f"{where}.start"] = "start only applies to pagination style page or offset"
        if len(self.errors) > before:
            return Pagination(style=style)
        return Pagination(
            style=style,
            start=start if start is not None else start_default,  # 1 (unused) for other styles
            size=size,
            total=paths.get("total"),
            max_pages=max_pages or MAX_PAGES,
            next=paths.get("next"),
            cursor=paths.get("cursor"),
        )

    def _whole(self, where: str, value: object, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.errors[where] = (
                f"{where.rpartition('.')[2]} must be a whole number from {low} to {high}, "
                f"not {value!r}"
            )
            return None
        return value

    def error(self, value: object) -> ErrorEnvelope | None:
        where = "error"
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"error must be an object with {', '.join(_ERROR_KEYS)}; not {checks.kind(value)}"
            )
            return None
        before = len(self.errors)
        for key in value:
            if key not in _ERROR_KEYS:
                self.errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in error; expected one of: {', '.join(_ERROR_KEYS)}"
                )
        when = self.path(f"{where}.when", value.get("when"), required=True)
        ok = value.get("ok", [])
        if isinstance(ok, str | int) and not isinstance(ok, bool):
            ok = [ok]
        if not isinstance(ok, list | tuple) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in ok
        ):
            self.errors[f"{where}.ok"] = (
                f'ok must be a list of the values that mean success, such as ["00"]; '
                f"not {checks.kind(ok)}"
            )
            ok = []
        message = value.get("message", [])
        if isinstance(message, str):
            message = [message]
        messages: list[str] = []
        if not isinstance(message, list | tuple) or len(message) > 9:
            self.errors[f"{where}.message"] = (
                f"message must be a path or a list of up to 9 paths, not {checks.kind(message)}"
            )
        else:
            for index, item in enumerate(message):
                path = f"{where}.message" if len(message) == 1 else f"{where}.message[{index}]"
                if found := self.path(path, item):
                    messages.append(found)
        if len(self.errors) > before or when is None:
            return None
        return ErrorEnvelope(when, tuple(str(v).strip() for v in ok), tuple(messages))


_WHAT = {
    "items": "the list of items (JMESPath for json, XPath for xml)",
    "total": "total item count",
    "next": "next page's URL",
    "cursor": "next page's cursor",
    "when": "the publisher's result code",
    "path": "the field's value within each item",
}


# --- dumping ------------------------------------------------------------------------------------


def rules_dump(parsed: ApiRules) -> dict[str, Any]:
    """The canonical JSON form of rules: every key present, fields in full."""
    request = parsed.request
    pagination = parsed.pagination
    error = parsed.error
    return {
        "request": {
            "url": request.url,
            "method": request.method,
            "query": dict(request.query),
            "form": dict(request.form) if request.form is not None else None,
            "json": json.loads(request.json) if request.json is not None else None,
            "headers": dict(request.headers),
        },
        "items": parsed.items,
        "key": parsed.key[0] if len(parsed.key) == 1 else list(parsed.key),
        "link": parsed.link,
        "fields": {
            name: {
                "path": rule.path,
                "type": rule.type,
                "formats": list(rule.formats),
                "regex": rule.regex.pattern if rule.regex is not None else None,
                "required": rule.required,
                "map": dict(rule.map),
            }
            for name, rule in parsed.fields.items()
        },
        "pagination": {
            "style": pagination.style,
            "start": pagination.start if pagination.style in ("page", "offset") else None,
            "size": pagination.size,
            "total": pagination.total,
            "max_pages": pagination.max_pages,
            "next": pagination.next,
            "cursor": pagination.cursor,
        },
        "error": None
        if error is None
        else {"when": error.when, "ok": list(error.ok), "message": list(error.message)},
        "timezone": parsed.timezone.key,
    }


# --- requests -----------------------------------------------------------------------------------


def start_requests(parsed: ApiRules, start_urls: Sequence[str]) -> list[Request]:
    """The crawl's seeds (see api_requests.start_requests)."""
    return api_requests.start_requests(parsed.request, parsed.pagination, start_urls)
