"""Pagination of a JSON or XML API: the requests of the pages after the one just read, by the
rules' style (page, offset, cursor, next, link). Pure Python (no Django).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from crawls.engine import api_docs as docs
from crawls.engine import api_requests, urls
from crawls.engine import request as requests
from crawls.engine.api_rules import ApiRules
from crawls.engine.request import Request


def next_requests(
    doc: docs.Doc,
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
            cursor = docs.text(doc.one(pagination.cursor, doc.root))
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
            ref = docs.text(doc.one(pagination.next, doc.root))
        except ValueError as exc:
            errors["pagination.next"] = str(exc)
            return []
    else:  # link
        ref = link_next or ""
    target = docs.absolute(ref, url)
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
        number = Decimal(docs.text(value).replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"total {docs.text(value)!r} is not a number of items") from None
    if number < 0 or number != number.to_integral_value():
        raise ValueError(f"total {docs.text(value)!r} is not a number of items")
    return int(number)
