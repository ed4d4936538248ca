"""Read one response of a JSON or XML API with its ApiRules: the publisher's error, the items as
records, the requests of the pages that follow.

In order: the body is parsed (JSON nested past MAX_DEPTH and XML declaring entities or a DTD are
refused unread); the error envelope is looked at first, on any status (a 4xx/5xx body too), and
its message becomes ``Page.error``; a response that is not 2xx without an envelope, or a body
that is not JSON/XML, is a page error in ``Page.errors["response"]`` ("HTTP 401", "not JSON:
..."); then each item becomes a ``Record`` (an item without its key or a required field is left
out and reported as ``Page.errors["items[3]"]``, at most MAX_MESSAGES of them); then pagination
gives the next requests. The deadline is checked between items, as extract() does between
steps: past it, ``Page.timeout`` names the step ("page", "items" or "pagination"). Runs in the
extraction sandbox's child. Pure Python (no Django).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import jmespath.exceptions  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from crawls import bounds
from crawls.engine import api_requests, api_rules, extract, rule_checks, urls, values, xmlsafe
from crawls.engine import request as requests
from crawls.engine.api_rules import ApiField, ApiRules
from crawls.engine.extract import Page, Record
from crawls.engine.request import Request

MAX_DEPTH = 64  # JSON responses nested deeper are refused (json.loads recurses per level)
MAX_MESSAGES = 20  # items reported one by one in Page.errors; the rest are counted
MAX_ERROR_LENGTH = 500  # characters of a publisher's error message kept
ITEMS_STEP = "items"
PAGINATION_STEP = "pagination"
CLASSIFICATIONS = "classifications"  # the field whose list value stays a list


class _Unreadable(ValueError):
    """The body cannot be read as the rules' kind."""


def read(
    body: bytes,
    *,
    rules: ApiRules,
    url: str,
    request: Request,
    status: int = 200,
    link_next: str | None = None,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Page:
    """Read one API response (see the module's docstring). `url` is the final URL, `request`
    the request that fetched it (its context carries the page), `link_next` the Link header's
    rel="next"; `deadline` a time.monotonic() value."""
    clock = extract._Clock(deadline, on_step)
    page = Page()
    try:
        if on_step is not None:
            on_step(extract.PARSE_STEP)
        _read(body, rules, url, request, status, link_next, clock, page)
    except extract._OutOfTime as out:
        page.timeout = out.step
    return page


def _read(
    body: bytes,
    rules: ApiRules,
    url: str,
    request: Request,
    status: int,
    link_next: str | None,
    clock: extract._Clock,
    page: Page,
) -> None:
    failed = not 200 <= status < 300
    try:
        doc = _parse(body, rules.kind)
    except _Unreadable as exc:
        envelope = _foreign_envelope(body, rules) if rules.kind == api_rules.JSON else None
        if envelope is not None:
            page.error = envelope
        else:
            page.errors["response"] = f"HTTP {status}" if failed else str(exc)
        return
    if rules.error is not None and (message := _publisher_error(doc, rules.error)) is not None:
        page.error = message
        return
    if failed:
        page.errors["response"] = f"HTTP {status}"
        return
    clock.enter(ITEMS_STEP)
    try:
        items = doc.items(rules.items)
    except ValueError as exc:
        page.errors["items"] = str(exc)
        return
    left_out = 0
    for index, item in enumerate(items):
        clock.check()
        record, problem = _record(doc, item, rules, url)
        if record is not None:
            page.records.append(record)
            continue
        left_out += 1
        if left_out <= MAX_MESSAGES:
            page.errors[f"items[{index}]"] = problem or "left out"
    if left_out > MAX_MESSAGES:
        page.errors["items"] = (
            f"{left_out} of {len(items)} items left out; the first {MAX_MESSAGES} are listed"
        )
    clock.enter(PAGINATION_STEP)
    page.requests = _next(doc, rules, url, request, link_next, len(items), page.errors)
    clock.check()


# --- documents ----------------------------------------------------------------------------------


class _JsonDoc:
    def __init__(self, root: object) -> None:
        self.root = root

    def search(self, path: str, node: object) -> object:
        try:
            return api_rules.jmespath_compiled(path).search(node)
        except jmespath.exceptions.JMESPathError as exc:
            raise ValueError(f"{path!r} cannot be read: {' '.join(str(exc).split())}") from None

    def items(self, path: str) -> list[object]:
        found = self.search(path, self.root)
        if found is None or found == "":  # data.go.kr writes "items": "" for no items
            return []
        if isinstance(found, list):
            return found
        if isinstance(found, dict):
            return [found]  # a list of one written as the item itself (XML turned JSON)
        raise ValueError(f"items path {path!r} gives {_kind(found)}, not a list of items")

    def one(self, path: str, node: object) -> object:
        found = self.search(path, node)
        if isinstance(found, list):
            values = [value for value in found if value is not None and value != ""]
            if len(values) > 1:
                raise ValueError(
                    f"{path!r} gives {len(values)} values; pick one, such as {path}[0]"
                )
            found = values[0] if values else None
        if isinstance(found, dict):
            raise ValueError(f"{path!r} gives an object, not a value; name one of its keys")
        return found

    def many(self, path: str, node: object) -> list[object]:
        found = self.search(path, node)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]


class _XmlDoc:
    def __init__(self, root: etree._Element) -> None:
        self.root = root

    def search(self, path: str, node: object) -> object:
        try:
            return api_rules.xpath_compiled(path)(node)
        except etree.XPathError as exc:
            raise ValueError(f"{path!r} cannot be read: {exc}") from None

    def items(self, path: str) -> list[object]:
        found = self.search(path, self.root)
        if not isinstance(found, list) or not all(isinstance(n, etree._Element) for n in found):
            raise ValueError(f"items path {path!r} must select elements, not {_kind(found)}")
        return list(found)

    def one(self, path: str, node: object) -> object:
        found = self.search(path, node)
        if isinstance(found, list):
            found = found[0] if found else None
        return _xml_value(found)

    def many(self, path: str, node: object) -> list[object]:
        found = self.search(path, node)
        values = found if isinstance(found, list) else [found]
        return [_xml_value(value) for value in values]


def _xml_value(found: object) -> object:
    if isinstance(found, etree._Element):
        return "".join(found.itertext())
    if isinstance(found, float):  # count(), number(): NaN when there is nothing
        if found != found:
            return None
        return int(found) if found.is_integer() else Decimal(repr(found))
    if isinstance(found, bool):
        return "true" if found else "false"
    return None if found is None else str(found)


_Doc = _JsonDoc | _XmlDoc


def _parse(body: bytes, kind: str) -> _Doc:
    if kind == api_rules.XML:
        try:
            return _XmlDoc(xmlsafe.parse(body))
        except xmlsafe.XmlError as exc:
            raise _Unreadable(str(exc)) from None
    try:
        bounds.text_check_depth(body, MAX_DEPTH)
    except bounds.TooDeep as exc:
        raise _Unreadable(f"not read: {exc}") from None
    try:
        try:
            return _JsonDoc(json.loads(body, parse_float=Decimal, parse_constant=_no_constant))
        except UnicodeDecodeError:
            # Korean APIs serve EUC-KR JSON now and then; JSON is UTF-8 everywhere else.
            text = body.decode("cp949")
            return _JsonDoc(json.loads(text, parse_float=Decimal, parse_constant=_no_constant))
    except UnicodeDecodeError:
        raise _Unreadable("not JSON: neither UTF-8 nor EUC-KR text") from None
    except ValueError as exc:
        raise _Unreadable(f"not JSON: {exc}; the body begins {_begins(body)}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _begins(body: bytes) -> str:
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _foreign_envelope(body: bytes, rules: ApiRules) -> str | None:
    """The error of a JSON source answering in XML (data.go.kr does, whatever type= says): the
    XML read as JSON ({"root": {"child": "text"}}) and the rules' error paths tried on it."""
    if rules.error is None or body.lstrip()[:1] != b"<":
        return None
    try:
        root = xmlsafe.parse(body)
    except xmlsafe.XmlError:
        return None
    return _publisher_error(_JsonDoc({_local(root.tag): _as_json(root)}), rules.error)


def _as_json(element: etree._Element) -> object:
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return (element.text or "").strip()
    data: dict[str, object] = {}
    for child in children:
        name, value = _local(child.tag), _as_json(child)
        if name in data:
            before = data[name]
            data[name] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            data[name] = value
    return data


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


# --- the error envelope -------------------------------------------------------------------------


def _publisher_error(doc: _Doc, envelope: api_rules.ErrorEnvelope) -> str | None:
    try:
        code = _text(doc.one(envelope.when, doc.root))
    except ValueError:
        return None
    if not code or any(_same_code(code, ok) for ok in envelope.ok):
        return None
    parts = []
    for path in envelope.message:
        with contextlib.suppress(ValueError):
            if text := _text(doc.one(path, doc.root)):
                parts.append(text)
    message = ": ".join(parts) or f"result code {code}"
    if len(message) > MAX_ERROR_LENGTH:
        message = message[: MAX_ERROR_LENGTH - 3] + "..."
    return message


def _same_code(code: str, ok: str) -> bool:
    """ "00" and 0 are one result code: publishers write it as a string or a number."""
    return code == ok or (code.isdigit() and ok.isdigit() and int(code) == int(ok))


# --- items --------------------------------------------------------------------------------------


def _record(doc: _Doc, item: object, rules: ApiRules, url: str) -> tuple[Record | None, str | None]:
    if isinstance(doc, _JsonDoc) and not isinstance(item, dict):
        return None, f"the item is {_kind(item)}, not an object"
    parts = []
    for path in rules.key:
        try:
            part = _text(doc.one(path, item))
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
            link = _absolute(_text(doc.one(rules.link, item)), url) or ""
    return Record(key=key, fields=fields, errors=errors, url=link), None


def _field(doc: _Doc, item: object, rule: ApiField, tz: ZoneInfo) -> tuple[object, str | None]:
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
        elif raw is not None and not isinstance(raw, list) and (text := _text(raw)):
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
    extract.convert (regex, then map, then the type)."""
    plain = rule.regex is None and not rule.map and rule.type in ("int", "decimal")
    if plain and isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        number = Decimal(raw)
        if rule.type == "decimal":
            return number
        if number != number.to_integral_value():
            raise ValueError(f"cannot read {raw} as int: it is not a whole number")
        return int(number)
    text = _text(raw)
    if not rule.map:
        return values.convert(text, rule, tz)
    kept = values.convert(text, _as_text(rule), tz)
    mapped = _mapping(rule).get(str(kept), kept)
    if rule.type == "text":
        return mapped
    return values.convert(str(mapped), _without_regex(rule), tz)


@lru_cache(maxsize=1024)
def _as_text(rule: ApiField) -> ApiField:
    return replace(rule, type="text", formats=())


@lru_cache(maxsize=1024)
def _without_regex(rule: ApiField) -> ApiField:
    return replace(rule, regex=None)


@lru_cache(maxsize=1024)
def _mapping(rule: ApiField) -> Mapping[str, str]:
    return dict(rule.map)


def _text(value: object) -> str:
    """A scalar as text; "" for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list):
        raise ValueError(f"expected a value, not {_kind(value)}")
    return " ".join(str(value).split())


def _kind(value: object) -> str:
    if isinstance(value, etree._Element):
        return "an element"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return rule_checks.kind(value)


def _absolute(ref: str, base: str) -> str | None:
    """ref resolved against base and canonicalised; None unless an http(s) URL."""
    if not ref:
        return None
    try:
        resolved = urljoin(base, ref.strip())
        parts = urlsplit(resolved)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return urls.canonicalize(resolved)
    except ValueError:
        return None


# --- pagination ---------------------------------------------------------------------------------


def _next(
    doc: _Doc,
    rules: ApiRules,
    url: str,
    request: Request,
    link_next: str | None,
    count: int,
    errors: dict[str, str],
) -> list[Request]:
    """The requests of the pages after this one (none on an empty page)."""
    pagination = rules.pagination
    if pagination.style == "none" or count == 0:
        return []
    context = request.context
    size = pagination.size
    values: dict[str, object] = {} if size is None else {"limit": size}
    if pagination.style in ("page", "offset"):
        style = pagination.style
        current = _int(context.get(style), pagination.start)
        step = 1 if style == "page" else (size or 1)
        index = (current - pagination.start) // step
        total = None
        if pagination.total is not None:
            try:
                total = _count(doc.one(pagination.total, doc.root))
            except ValueError as exc:
                errors["pagination.total"] = str(exc)
        if total is not None and size is not None:
            if index != 0:
                return []  # the first page asked for every page at once
            last = min(api_requests.pages_for(total, size), pagination.max_pages)
            indexes = range(1, last)
        elif index + 1 < pagination.max_pages:
            indexes = range(index + 1, index + 2)
        else:
            return []
        base = api_requests.base_of(rules.request, request)
        made = []
        for i in indexes:
            state: dict[str, object] = {style: pagination.start + i * step}
            made.append(api_requests.build(rules.request, base, {**values, **state}, state))
        return made

    number = _int(context.get("page"), 1)
    if number >= pagination.max_pages:
        return []
    state = {"page": number + 1}
    if pagination.style == "cursor":
        assert pagination.cursor is not None  # noqa: S101 - rules_parse requires it
        try:
            cursor = _text(doc.one(pagination.cursor, doc.root))
        except ValueError as exc:
            errors["pagination.cursor"] = str(exc)
            return []
        if not cursor or cursor == context.get("cursor"):
            return []
        state["cursor"] = cursor
        base = api_requests.base_of(rules.request, request)
        return [api_requests.build(rules.request, base, {**values, **state}, state)]
    if pagination.style == "next":
        assert pagination.next is not None  # noqa: S101 - rules_parse requires it
        try:
            ref = _text(doc.one(pagination.next, doc.root))
        except ValueError as exc:
            errors["pagination.next"] = str(exc)
            return []
    else:  # link
        ref = link_next or ""
    target = _absolute(ref, url)
    if target is None:
        return []
    target = api_requests.with_secret_query(rules.request, target)
    if target in (request.url, urls.canonicalize(url)):
        return []
    # A next link is a GET of the URL the publisher gave, with the template's headers (an API
    # key in a header is needed on every page); the query is the publisher's, but for the
    # template's secret entries (the fetcher resolves them, and the frontier never holds them).
    headers = tuple((name, requests.fill(value, values)) for name, value in rules.request.headers)
    return [Request(target, "GET", headers=headers, context=state)]


def _int(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _count(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(_text(value).replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"total {_text(value)!r} is not a number of items") from None
    if number < 0 or number != number.to_integral_value():
        raise ValueError(f"total {_text(value)!r} is not a number of items")
    return int(number)
