"""The request template of a JSON or XML API source: its shape (``RequestTemplate``, with the
``Pagination`` whose placeholders it may use) and its checks.

``template_parse`` validates the ``request`` part of the rules (placeholders known and allowed by
the pagination style, sizes bounded, no line breaks in headers) into a ``RequestTemplate``;
``crawls.engine.api_requests`` makes every page's request from it. Pure Python (no Django).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from crawls import bounds
from crawls.engine import request as requests
from crawls.engine import rule_checks as checks
from crawls.engine import urls
from crawls.engine.rule_limits import Limits

MAX_PAGES = 1000  # pagination.max_pages unless the rules say otherwise
MAX_JSON_BODY_DEPTH = 8  # nesting of a request's JSON body template
CURSOR = "{cursor}"
REQUEST_KEYS = ("url", "method", "query", "form", "json", "headers")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
# Headers the fetcher sets itself: a template must not override them.
# The placeholders a pagination style fills (the first is the one it needs); a cursor API's
# requests are counted too, so {page} may number them.
_PAGE_NAMES = {"page": ("page",), "offset": ("offset",), "cursor": ("cursor", "page")}


@dataclass(frozen=True)
class RequestTemplate:
    """What every page's request is made of; strings may hold placeholders."""

    url: str | None = None  # None: each start URL
    method: str = "GET"
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] | None = None
    json: str | None = None  # the JSON body template as canonical JSON text
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Pagination:
    """How the pages of a listing follow one another (checked by api_rules)."""

    style: str = "none"
    start: int = 1  # page: the first page's number; offset: the first offset
    size: int | None = None  # {limit}; the step of offset
    total: str | None = None  # path to the item count (page, offset)
    max_pages: int = MAX_PAGES
    next: str | None = None  # path to the next page's URL (next)
    cursor: str | None = None  # path to the next cursor (cursor)


def template_parse(
    value: object, pagination: Pagination, limits: Limits, errors: dict[str, str]
) -> RequestTemplate:
    """The request part of rules checked (problems added to `errors`, keyed "request.…")."""
    return _TemplateParser(limits, errors).request(value, pagination)


class _TemplateParser:
    def __init__(self, limits: Limits, errors: dict[str, str]) -> None:
        self.limits = limits
        self.errors = errors

    def request(self, value: object, pagination: Pagination) -> RequestTemplate:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.errors["request"] = (
                f"request must be an object with {', '.join(REQUEST_KEYS)}; "
                f"not {checks.kind(value)}"
            )
            return RequestTemplate()
        errors = self.errors
        before = len(errors)
        for key in value:
            if key not in REQUEST_KEYS:
                errors[f"request.{key}"] = (
                    f"unknown key {key!r} in request; expected one of: {', '.join(REQUEST_KEYS)}"
                )
        allowed = _allowed_placeholders(pagination)
        method = value.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in requests.METHODS:
            errors["request.method"] = f"method must be GET or POST, not {method!r}"
            method = "GET"
        method = method.upper()

        url = value.get("url")
        if url is not None:
            url = self._url(url, allowed)
        query = self._entries("request.query", value.get("query"), allowed, cursor=True)
        form = None
        if value.get("form") is not None:
            form = self._entries("request.form", value["form"], allowed, cursor=True)
            if method != "POST":
                errors["request.form"] = "form is a POST body: set method to POST, or use query"
        body = None
        if value.get("json") is not None:
            body = self._json(value["json"], allowed)
            if method != "POST":
                errors["request.json"] = "json is a POST body: set method to POST, or use query"
            if form is not None:
                errors["request.json"] = "give form or json, not both: a request has one body"
        headers = self._entries("request.headers", value.get("headers"), allowed, cursor=False)
        for name, _ in headers:
            if not _HEADER.fullmatch(name):
                errors[f"request.headers.{name}"] = f"{name!r} is not a valid header name"
            elif name.lower() in requests.OWN_HEADERS:
                errors[f"request.headers.{name}"] = (
                    f"{name} is set by the crawler; it cannot be given in rules"
                )
        used = set()
        for text in (
            url or "",
            *_values(query),
            *_values(form or ()),
            body or "",
            *_values(headers),
        ):
            used |= requests.placeholders(text)
        self._needs(used, pagination)
        if len(errors) > before:
            return RequestTemplate()
        return RequestTemplate(url, method, query, form, body, headers)

    def _template(self, where: str, text: str, allowed: frozenset[str], *, cursor: bool) -> bool:
        """Whether a template string is acceptable; records what is wrong."""
        limit = self.limits.selector_length
        if len(text) > limit:
            self.errors[where] = f"is {len(text)} characters long; at most {limit} are allowed"
            return False
        if "\r" in text or "\n" in text:
            self.errors[where] = "must be one line (no line breaks)"
            return False
        names = requests.placeholders(text)
        for name in sorted(names):
            if name.startswith(requests.SECRET_PREFIX):
                continue
            if name == "cursor" and "cursor" in allowed and not (cursor and text == CURSOR):
                self.errors[where] = (
                    "{cursor} must be the whole value of a query, form or json entry "
                    "(the first request leaves that entry out)"
                )
                return False
            if name not in allowed:
                self.errors[where] = _placeholder_problem(name)
                return False
        if _unbalanced(text):
            self.errors[where] = (
                f"{text!r} has a brace that is not a placeholder; write {{{{ or }}}} for a "
                f"literal brace"
            )
            return False
        return True

    def _url(self, value: object, allowed: frozenset[str]) -> str | None:
        where = "request.url"
        if not isinstance(value, str) or not value.strip():
            shown = repr(value) if isinstance(value, str) else checks.kind(value)
            self.errors[where] = (
                f"url must be a URL such as 'https://apis.example.kr/bids', not {shown}"
            )
            return None
        value = value.strip()
        if not self._template(where, value, allowed, cursor=False):
            return None
        sample = sample_fill(value)
        parts = urlsplit(sample)
        if parts.scheme:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.errors[where] = (
                    f"url must be an http(s) URL or relative to the start URL, not {value!r}"
                )
                return None
        elif any(not n.startswith(requests.SECRET_PREFIX) for n in requests.placeholders(value)):
            self.errors[where] = (
                "a relative url (resolved against each start URL) cannot hold {page}, {offset} "
                "or {limit}: give an absolute URL, or put them in query"
            )
            return None
        try:
            urls.canonicalize(urljoin("http://example.org/", sample))
        except ValueError as exc:
            self.errors[where] = f"url {value!r} is not a valid URL: {exc}"
            return None
        return value

    def _entries(
        self, where: str, value: object, allowed: frozenset[str], *, cursor: bool
    ) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"{where} must be an object of names to values, not {checks.kind(value)}"
            )
            return ()
        limit = self.limits.selectors if where.endswith("headers") else self.limits.fields
        if len(value) > limit:
            self.errors[where] = f"{where} has {len(value)} entries; at most {limit} are allowed"
            return ()
        entries = []
        for name, item in value.items():
            path = f"{where}.{name}"
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                self.errors[path] = f"{name!r} is not a valid name"
                continue
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.errors[path] = (
                    f"{name} must be a string or a whole number, not {checks.kind(item)}"
                )
                continue
            text = str(item)
            if self._template(path, text, allowed, cursor=cursor):
                entries.append((name, text))
        return tuple(entries)

    def _json(self, value: object, allowed: frozenset[str]) -> str | None:
        where = "request.json"
        try:
            bounds.value_check_depth(value, MAX_JSON_BODY_DEPTH)
        except bounds.TooDeep as exc:
            self.errors[where] = f"the json body template is {exc}"
            return None
        limit = 4 * self.limits.selector_length
        if bounds.json_size(value) > limit:
            self.errors[where] = f"the json body template is longer than {limit} characters"
            return None
        pending: list[tuple[str, object]] = [(where, value)]
        while pending:
            path, item = pending.pop()
            if isinstance(item, Mapping):
                pending.extend((f"{path}.{k}", v) for k, v in item.items())
            elif isinstance(item, list):
                pending.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
            elif isinstance(item, str):
                self._template(path, item, allowed, cursor=True)
            elif item is not None and not isinstance(item, bool | int | float):
                self.errors[path] = f"not a JSON value: {checks.kind(item)}"
        if any(key.startswith(where) for key in self.errors):
            return None
        return requests.json_body(value)

    def _needs(self, used: set[str], pagination: Pagination) -> None:
        if "limit" in used and pagination.size is None:
            self.errors.setdefault(
                "pagination.size", "the request uses {limit}: give pagination.size"
            )
        for style, names in _PAGE_NAMES.items():
            if pagination.style == style and names[0] not in used:
                self.errors["request"] = (
                    f"pagination style {style!r} needs a {{{names[0]}}} placeholder in the "
                    f"request (query, form, json or url)"
                )


def _allowed_placeholders(pagination: Pagination) -> frozenset[str]:
    allowed = {"limit"}
    allowed |= set(_PAGE_NAMES.get(pagination.style, ()))
    return frozenset(allowed)


def _placeholder_problem(name: str) -> str:
    if name in ("page", "offset", "cursor"):
        return f"{{{name}}} needs pagination style {name!r}"
    if name.isdigit():
        return f"{{{name}}} is a pattern group; API requests have none"
    return (
        f"unknown placeholder {{{name}}}; expected {{page}}, {{offset}}, {{limit}}, {{cursor}} "
        f"or {{secret.NAME}} (write {{{{ and }}}} for literal braces)"
    )


def _unbalanced(text: str) -> bool:
    rest = requests.PLACEHOLDER.sub("", text)
    return "{" in rest or "}" in rest


def _values(entries: Sequence[tuple[str, str]]) -> list[str]:
    return [value for _, value in entries]


def sample_fill(text: str) -> str:
    return requests.fill(text, {"page": 1, "offset": 0, "limit": 10, "cursor": "c"})
