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
extraction sandbox's child. Pure Python (no Django). This module reads the page and the error
envelope; ``api_docs`` parses documents and evaluates paths, ``api_items`` reads items into
records, ``api_paging`` makes the next pages' requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from lxml import etree  # type: ignore[import-untyped]

from crawls.engine import api_docs as docs
from crawls.engine import api_items, api_paging, api_rules, extract, xmlsafe
from crawls.engine.api_docs import MAX_DEPTH as MAX_DEPTH
from crawls.engine.api_items import CLASSIFICATIONS as CLASSIFICATIONS
from crawls.engine.api_rules import ApiRules
from crawls.engine.extract import Page
from crawls.engine.request import Request

MAX_MESSAGES = 20  # items reported one by one in Page.errors; the rest are counted
MAX_ERROR_LENGTH = 500  # characters of a publisher's error message kept
ITEMS_STEP = "items"
PAGINATION_STEP = "pagination"


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
        doc = docs.parse(body, rules.kind)
    except docs.Unreadable as exc:
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
        record, problem = api_items.record(doc, item, rules, url)
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
    page.requests = api_paging.next_requests(
        doc, rules, url, request, link_next, len(items), page.errors
    )
    clock.check()


def _foreign_envelope(body: bytes, rules: ApiRules) -> str | None:
    """The error of a JSON source answering in XML (data.go.kr does, whatever type= says): the
    XML read as JSON ({"root": {"child": "text"}}) and the rules' error paths tried on it."""
    if rules.error is None or body.lstrip()[:1] != b"<":
        return None
    try:
        root = xmlsafe.parse(body)
    except xmlsafe.XmlError:
        return None
    return _publisher_error(docs.JsonDoc({_local(root.tag): _as_json(root)}), rules.error)


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


def _publisher_error(doc: docs.Doc, envelope: api_rules.ErrorEnvelope) -> str | None:
    try:
        code = docs.text(doc.one(envelope.when, doc.root))
    except ValueError:
        return None
    if not code or any(_same_code(code, ok) for ok in envelope.ok):
        return None
    parts = []
    for path in envelope.message:
        with contextlib.suppress(ValueError):
            if text := docs.text(doc.one(path, doc.root)):
                parts.append(text)
    message = ": ".join(parts) or f"result code {code}"
    if len(message) > MAX_ERROR_LENGTH:
        message = message[: MAX_ERROR_LENGTH - 3] + "..."
    return message


def _same_code(code: str, ok: str) -> bool:
    """ "00" and 0 are one result code: publishers write it as a string or a number."""
    return code == ok or (code.isdigit() and ok.isdigit() and int(code) == int(ok))
