"""Every page's request of a JSON or XML API source, made from its request template
(``crawls.engine.api_template``, which checks it; its names are importable from here too).

``start_requests`` fills the template for a crawl's first page, ``build`` for any later one.
Values are filled with ``crawls.engine.request.fill``: ``{secret.NAME}`` stays a placeholder until
the fetcher sends the request. Pure Python (no Django).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from crawls.engine import request as requests
from crawls.engine import urls
from crawls.engine.api_template import CURSOR as CURSOR
from crawls.engine.api_template import MAX_JSON_BODY_DEPTH as MAX_JSON_BODY_DEPTH
from crawls.engine.api_template import MAX_PAGES as MAX_PAGES
from crawls.engine.api_template import REQUEST_KEYS as REQUEST_KEYS
from crawls.engine.api_template import Pagination as Pagination
from crawls.engine.api_template import RequestTemplate as RequestTemplate
from crawls.engine.api_template import sample_fill
from crawls.engine.api_template import template_parse as template_parse
from crawls.engine.request import Request


def start_requests(
    template: RequestTemplate, pagination: Pagination, start_urls: Sequence[str]
) -> list[Request]:
    """The crawl's seeds: the template filled for the first page, once per distinct URL.

    ValueError (naming the URL) for one that cannot be canonicalised; request.TemplateError for
    a template that cannot be filled."""
    context: dict[str, object] = {}
    if pagination.style in ("page", "offset"):
        context[pagination.style] = pagination.start
    elif pagination.style != "none":
        context["page"] = 1
    seeds: dict[bytes, Request] = {}
    for start in start_urls:
        base = _base_url(template, start)
        seed = build(template, base, values_for(pagination, context), context)
        seeds.setdefault(requests.request_hash(seed), seed)
    return list(seeds.values())


def _base_url(template: RequestTemplate, start_url: str) -> str:
    url = template.url
    base = start_url.strip() if url is None else urljoin(start_url.strip(), url)
    try:
        urls.canonicalize(sample_fill(base))
    except ValueError as exc:
        raise ValueError(f"{start_url!r} is not a valid URL: {exc}") from None
    return base


def values_for(pagination: Pagination, context: Mapping[str, object]) -> dict[str, object]:
    """The placeholders' values of a page: its pagination state and {limit}."""
    values: dict[str, object] = dict(context)
    if pagination.size is not None:
        values["limit"] = pagination.size
    return values


def build(
    template: RequestTemplate,
    base: str,
    values: Mapping[str, object],
    context: Mapping[str, object],
) -> Request:
    """The template filled with `values` on `base` (the URL before the template's query)."""
    url = requests.fill(base, values, quote_values=True)
    query = _filled(template.query, values)
    if query:
        parts = urlsplit(url)
        names = {name for name, _ in query}
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
        url = urlunsplit(parts._replace(query=urlencode(kept + query)))
    url = urls.canonicalize(url)
    body, content_type = "", ""
    if template.form is not None:
        body, content_type = requests.form_body(dict(_filled(template.form, values))), requests.FORM
    elif template.json is not None:
        body = requests.json_body(_json_filled(json.loads(template.json), values))
        content_type = requests.JSON
    headers = tuple((name, requests.fill(value, values)) for name, value in template.headers)
    return Request(url, template.method, body, content_type, headers, dict(context))


def with_secret_query(template: RequestTemplate, url: str) -> str:
    """A publisher's next link with the template's secret-bearing query entries put back as
    placeholders: a link that echoes the service key must not carry it into the frontier."""
    secret = [(k, v) for k, v in template.query if requests.SECRET_PREFIX in v]
    if not secret:
        return url
    names = {name for name, _ in secret}
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urls.canonicalize(urlunsplit(parts._replace(query=urlencode(kept + secret))))


def base_of(template: RequestTemplate, request: Request) -> str:
    """The URL a template's request was built on: its own url, else the request's URL without
    the query entries the template sets."""
    if template.url is not None and urlsplit(template.url).scheme:
        return template.url
    names = {name for name, _ in template.query}
    parts = urlsplit(request.url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _filled(
    entries: Sequence[tuple[str, str]], values: Mapping[str, object]
) -> list[tuple[str, str]]:
    filled = []
    for name, value in entries:
        if value == CURSOR and values.get("cursor") is None:
            continue  # the first page of a cursor API has no cursor yet
        filled.append((name, requests.fill(value, values)))
    return filled


def _json_filled(value: object, values: Mapping[str, object]) -> object:
    """A JSON body template filled; a string that is one number placeholder becomes a number."""
    if isinstance(value, dict):
        return {
            k: _json_filled(v, values)
            for k, v in value.items()
            if not (v == CURSOR and values.get("cursor") is None)
        }
    if isinstance(value, list):
        return [
            _json_filled(v, values)
            for v in value
            if not (v == CURSOR and values.get("cursor") is None)
        ]
    if isinstance(value, str):
        names = requests.placeholders(value)
        if len(names) == 1 and value == "{" + next(iter(names)) + "}":
            found = values.get(next(iter(names)))
            if isinstance(found, int) and not isinstance(found, bool):
                return found
        return requests.fill(value, values)
    return value


def pages_for(total: int, size: int) -> int:
    """How many pages `total` items fill, `size` a page (at least one)."""
    return max(1, math.ceil(total / size))
