"""Rules of JSON and XML API sources: the request template (crawls.engine.api_requests), where
the items are, what to read from each, how to page and how the publisher says something went
wrong.

``rules_parse`` validates a rules document (the json/xml contract in docs) and returns an
immutable, picklable ``ApiRules``; like ``crawls.engine.rules`` it reports every problem at once
in ``RulesError.errors``, keyed by path ("fields.amount.path", "pagination.style",
"request.query.pageNo"). Paths are JMESPath (json) or XPath 1.0 (xml), checked and compiled
(once per process, cached) in ``api_paths``. ``start_requests`` builds a crawl's seeds. This
module holds the document as a whole; its parts are checked in ``api_requests`` (the request),
``api_field_rules`` (fields) and ``api_paging_rules`` (pagination, error envelope). Pure Python
(no Django).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from crawls.engine import api_requests, api_template, field_rules, rules
from crawls.engine import rule_checks as checks
from crawls.engine.api_field_rules import MAX_MAP as MAX_MAP
from crawls.engine.api_field_rules import ApiField as ApiField
from crawls.engine.api_field_rules import FieldParser
from crawls.engine.api_paging_rules import MAX_PAGES_LIMIT as MAX_PAGES_LIMIT
from crawls.engine.api_paging_rules import STYLES as STYLES
from crawls.engine.api_paging_rules import ErrorEnvelope as ErrorEnvelope
from crawls.engine.api_paging_rules import PagingParser
from crawls.engine.api_paths import JSON as JSON
from crawls.engine.api_paths import XML as XML
from crawls.engine.api_paths import jmespath_compiled as jmespath_compiled
from crawls.engine.api_paths import path_problem as path_problem
from crawls.engine.api_paths import xpath_compiled as xpath_compiled
from crawls.engine.api_template import MAX_PAGES as MAX_PAGES
from crawls.engine.api_template import Pagination as Pagination
from crawls.engine.api_template import RequestTemplate as RequestTemplate
from crawls.engine.request import Request
from crawls.engine.rules import Limits, RulesError

ROOT = rules.ROOT

_TOP_KEYS = ("request", "items", "key", "link", "fields", "pagination", "error", "timezone")


@dataclass(frozen=True)
class ApiRules:
    """Validated rules of a json or xml source."""

    kind: str  # "json" or "xml"
    request: RequestTemplate = field(default_factory=RequestTemplate)
    items: str = ""
    key: tuple[str, ...] = ()
    link: str | None = None
    fields: Mapping[str, ApiField] = field(default_factory=dict)  # kept as a field_rules.FieldMap
    pagination: Pagination = field(default_factory=Pagination)
    error: ErrorEnvelope | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def __post_init__(self) -> None:
        if not isinstance(self.fields, field_rules.FieldMap):
            object.__setattr__(self, "fields", field_rules.FieldMap(self.fields))


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


class _Parser(FieldParser, PagingParser):
    """All parts of API rules checked with one list of errors; the key and the request here."""

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
        return api_template.template_parse(value, pagination, self.limits, self.errors)


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
