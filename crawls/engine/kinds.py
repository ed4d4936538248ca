"""The kinds of source Forest reads, each with its own rules and reader, on one engine.

- ``html``: a board of HTML pages (crawls.engine.rules, crawls.engine.extract);
- ``json`` and ``xml``: an open API (crawls.engine.api_rules, crawls.engine.api_read);
- ``ocds``: an Open Contracting release or record package feed (crawls.engine.ocds).

Every kind gives the same four things: ``rules_parse`` (validate; RulesError by path),
``rules_dump`` (canonical JSON), ``start_requests`` (the crawl's seeds from its start URLs) and
``read`` (one response → a Page: links and requests to follow, item fields or records, the
publisher's error). ``read`` runs in the extraction sandbox's child process. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crawls.engine import api_read, api_rules, extract, ocds, rules, urls
from crawls.engine.request import Request

HTML, JSON, XML, OCDS = "html", "json", "xml", "ocds"
KINDS: tuple[str, ...] = (HTML, JSON, XML, OCDS)
# What a fetch accepts as the body of each kind (None: any type; the reader judges the body).
ACCEPT: dict[str, tuple[str, ...] | None] = {HTML: ("text/html", "application/xhtml+xml")}
ACCEPT_HEADER = {
    HTML: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
    JSON: "application/json,text/json;q=0.9,*/*;q=0.5",
    XML: "application/xml,text/xml;q=0.9,*/*;q=0.5",
    OCDS: "application/json,*/*;q=0.5",
}

AnyRules = Any  # rules.Rules | api_rules.ApiRules | ocds.OcdsRules


def kind_check(kind: object) -> str:
    if kind not in KINDS:
        raise rules.RulesError({"kind": f"kind must be one of {', '.join(KINDS)}; not {kind!r}"})
    return str(kind)


def rules_parse(kind: str, data: object, *, limits: rules.Limits | None = None) -> AnyRules:
    """Validate a source's rules for its kind; RulesError lists every problem by path."""
    kind = kind_check(kind)
    if kind == HTML:
        return rules.rules_parse(data, limits=limits)
    if kind in (JSON, XML):
        return api_rules.rules_parse(data, kind=kind, limits=limits)
    return ocds.rules_parse(data, limits=limits)


def rules_dump(kind: str, parsed: AnyRules) -> dict[str, object]:
    kind = kind_check(kind)
    if kind == HTML:
        return rules.rules_dump(parsed)
    if kind in (JSON, XML):
        return api_rules.rules_dump(parsed)
    return ocds.rules_dump(parsed)


def kind_of(parsed: AnyRules) -> str:
    if isinstance(parsed, rules.Rules):
        return HTML
    if isinstance(parsed, api_rules.ApiRules):
        return parsed.kind
    return OCDS


def ignore_params(parsed: AnyRules) -> tuple[str, ...]:
    return tuple(getattr(parsed, "ignore_params", ()))


def start_requests(parsed: AnyRules, start_urls: Sequence[str]) -> list[Request]:
    """The crawl's seeds. ValueError (naming the URL) for one that cannot be canonicalised;
    request.TemplateError for a template that cannot be filled."""
    kind = kind_of(parsed)
    if kind in (JSON, XML):
        return api_rules.start_requests(parsed, start_urls)
    ignored = ignore_params(parsed)
    return [Request(urls.canonicalize(url, ignore_params=ignored)) for url in start_urls]


def read(
    body: bytes,
    *,
    rules: AnyRules,
    url: str,
    request: Request,
    status: int = 200,
    link_next: str | None = None,
    want_links: bool = True,
    want_fields: bool = True,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> extract.Page:
    """Read one response with the rules of its kind (see the module's docstring).

    `url` is the final URL (after redirects), `request` the frontier's request that fetched it
    (its context carries pagination state), `status` the HTTP status (a 4xx body is read for
    the publisher's error only), `link_next` the response's Link rel="next", if any."""
    kind = kind_of(rules)
    if kind == HTML:
        return extract.extract(
            body,
            url=url,
            rules=rules,
            want_links=want_links,
            want_fields=want_fields,
            deadline=deadline,
            on_step=on_step,
        )
    if kind in (JSON, XML):
        return api_read.read(
            body,
            rules=rules,
            url=url,
            request=request,
            status=status,
            link_next=link_next,
            deadline=deadline,
            on_step=on_step,
        )
    return ocds.read(
        body,
        rules=rules,
        url=url,
        request=request,
        status=status,
        deadline=deadline,
        on_step=on_step,
    )
