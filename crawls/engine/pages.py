"""One fetched page of a crawl turned into what its batch stores: items, links and requests
to follow, outcomes and the events of its problems. The page is read in the sandbox's child
process (kinds.read under a budget); what it finds is checked against the crawl's scope and the
SSRF guard before it reaches the frontier. Used by crawls.engine.run, one per run.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from crawls import events
from crawls.engine import extract, frontier, guard, kinds, quality, sandbox, store, urls
from crawls.engine.fetch import Response
from crawls.engine.request import Request, item_hash, redact, request_hash
from crawls.engine.sandbox_stream import StreamSandbox
from crawls.engine.scope import Scope, allowlist
from crawls.models import Source


@dataclass(slots=True)
class BatchResult:
    """Everything one batch produced, stored together in one transaction."""

    outcomes: list[frontier.Outcome] = field(default_factory=list)
    items: list[store.Item] = field(default_factory=list)
    not_modified: list[bytes] = field(default_factory=list)
    links: list[frontier.Link] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    quality: Counter[str] = field(default_factory=Counter)  # crawls.engine.quality's counters
    url_events: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    last_url: str = ""
    # The publisher's error (an API's error envelope): the crawl fails with it once stored.
    publisher_error: str | None = None


class Pages:
    """Reads the pages of one crawl run with its rules, scope and sandbox."""

    def __init__(self, source: Source, parsed: kinds.AnyRules) -> None:
        self.rules = parsed
        self.kind = kinds.kind_of(parsed)
        self.ignore_params = kinds.ignore_params(parsed)
        self.secrets = {str(k): str(v) for k, v in (source.secrets or {}).items()}
        # An API's own pages (its pagination) are siblings of the first: they do not go deeper.
        self.flat = self.kind != kinds.HTML
        seeds = []
        if self.flat:
            with contextlib.suppress(ValueError):
                seeds = [r.url for r in kinds.start_requests(parsed, source.start_urls)]
        self.scope = Scope(source, seeds=seeds)
        self.allowlist = allowlist()
        # Pages are read in a child process, under a budget (see crawls.engine.sandbox): by
        # `read_ahead` (on the run's event loop, as fetches complete), else one at a time.
        self.sandbox = sandbox.Sandbox()
        self.extract_budget = settings.CRAWL_EXTRACT_BUDGET_SECONDS
        self.extract_kill_after = settings.CRAWL_EXTRACT_KILL_GRACE
        self.stream = StreamSandbox(
            parsed, budget=self.extract_budget, kill_after=self.extract_kill_after
        )
        self._read_ahead: dict[int, extract.Page | sandbox.SandboxError] = {}
        self.collect = settings.QUALITY_COLLECT
        fields = getattr(parsed, "fields", None) or {}
        self.required = frozenset(name for name, rule in fields.items() if rule.required)

    def close(self) -> None:
        self.sandbox.close()
        self.stream.close()

    def forget(self, claimed: frontier.Claimed) -> None:
        """Drop what read_ahead kept for a page that will not be handled (its fetch dropped)."""
        self._read_ahead.pop(claimed.id, None)

    async def read_ahead(self, claimed: frontier.Claimed, response: Response) -> None:
        """Read the page in the streaming sandbox now, if handle() will read it; handle() then
        takes the result instead of reading it itself."""
        envelope = not response.ok and bool(response.body) and self.kind != kinds.HTML
        if (not response.ok and not envelope) or response.not_modified:
            return
        try:
            self._read_ahead[claimed.id] = await self.stream.extract(
                response.body or b"", **_page_of(claimed, response, is_item=claimed.kind == "item")
            )
        except sandbox.SandboxError as exc:
            self._read_ahead[claimed.id] = exc

    def handle(self, claimed: frontier.Claimed, response: Response, result: BatchResult) -> None:
        def fail(error_class: str, error: str, **extra: str) -> None:
            result.errors[error_class] += 1
            result.outcomes.append(
                frontier.Outcome(claimed.id, "failed", response.status, f"{error_class}: {error}")
            )
            event_type = events.URL_REFUSED if error_class == "refused" else events.PAGE_ERROR
            payload: dict[str, object] = {
                "url": claimed.request.describe(),
                "class": error_class,
                "error": error,
                **extra,
            }
            if response.status:
                payload["status"] = response.status
            result.url_events.append((event_type, payload))

        # An API's error answer may say why in its error envelope (a wrong service key).
        envelope = not response.ok and bool(response.body) and self.kind != kinds.HTML
        if not response.ok and not envelope:
            fail(response.error_class or "fetch", response.error)
            return
        if response.not_modified:
            result.not_modified.append(claimed.url_hash)
            if self.collect:
                result.quality[quality.NOT_MODIFIED] += 1
            result.outcomes.append(frontier.Outcome(claimed.id, "done", 304, ""))
            return
        is_item = claimed.kind == "item"
        page = self._read(claimed, response, is_item=is_item, fail=None if envelope else fail)
        if page is not None and page.error:
            result.publisher_error = redact(page.error, self.secrets)
            fail("publisher", result.publisher_error)
            return
        if envelope:
            fail(response.error_class or "fetch", response.error)
            return
        if page is None:
            if is_item and self.collect:
                result.quality[quality.ITEM_PAGES] += 1
                result.quality[quality.EMPTY_ITEM_PAGES] += 1
            return
        if is_item:
            fields = page.fields
            gave = fields is not None and "title" not in page.errors and bool(fields.get("title"))
            if self.collect:
                quality.count_item_page(
                    result.quality,
                    fields=fields,
                    errors=page.errors,
                    required=self.required,
                    gave_item=gave,
                )
            if not gave or fields is None:
                fail("extract", "; ".join(f"{k}: {v}" for k, v in page.errors.items()) or "empty")
                return
            if claimed.request.is_plain_get:
                bid_url = self._bid_url(claimed.url, page.canonical)
                bid_hash = urls.url_hash(bid_url)
            else:  # a POST's notice is the request itself (its URL is the same for all)
                bid_url, bid_hash = claimed.url, claimed.url_hash
            result.items.append(
                store.Item(
                    url=bid_url,
                    url_hash=bid_hash,
                    fields=fields,
                    content_hash=urls.content_hash(fields),
                    etag=response.etag,
                    last_modified=response.last_modified,
                )
            )
            if page.errors:  # optional fields that did not parse: stored as None, reported
                result.errors["extract_field"] += len(page.errors)
        else:
            depth = claimed.depth if self.flat else claimed.depth + 1
            for kind, found in (("list", page.follow), ("item", page.items)):
                for link in found:
                    self._discover(link, depth, kind, result)
            for kind, requests in (("list", page.requests), ("item", page.item_requests)):
                for found_request in requests:
                    self._discover(found_request, depth, kind, result)
            self._records(claimed, page, response, result)
        result.outcomes.append(frontier.Outcome(claimed.id, "done", response.status, ""))

    def _read(
        self,
        claimed: frontier.Claimed,
        response: Response,
        *,
        is_item: bool,
        fail: Callable[..., None] | None,
    ) -> extract.Page | None:
        """The page read in the sandbox; None (after `fail`, when given) when it could not be."""
        try:
            ahead = self._read_ahead.pop(claimed.id, None)
            if isinstance(ahead, sandbox.SandboxError):
                raise ahead
            page = ahead or self.sandbox.extract(
                response.body or b"",
                rules=self.rules,
                budget=self.extract_budget,
                kill_after=self.extract_kill_after,
                **_page_of(claimed, response, is_item=is_item),
            )
        except sandbox.SandboxError as exc:
            if fail is not None:
                fail("extract", str(exc))
            return None
        if page.timeout is not None:
            if fail is not None:
                fail(
                    "extract_timeout",
                    f"{page.timeout}: reading the page took longer than {self.extract_budget:g} s",
                    field=page.timeout,
                )
            return None
        return page

    def _records(
        self,
        claimed: frontier.Claimed,
        page: extract.Page,
        response: Response,
        result: BatchResult,
    ) -> None:
        """Items read off a response itself (json, xml, ocds) and the page's own problems."""
        if page.records:
            base = claimed.url.partition("?")[0].partition("#")[0]
            for record in page.records:
                link = record.url if record.url.startswith(("http://", "https://")) else ""
                result.items.append(
                    store.Item(
                        url=link or f"{base}#{record.key}",
                        url_hash=item_hash(record.key),
                        fields=record.fields,
                        content_hash=urls.content_hash(record.fields),
                        version=record.version,
                        partial=record.partial,
                    )
                )
                if record.errors:
                    result.errors["extract_field"] += len(record.errors)
                if self.collect:
                    quality.count_item(result.quality, record.fields)
                    quality.count_errors(result.quality, record.errors)
        if self.kind != kinds.HTML and page.errors:
            # Items left out (no key, a required field missing), a body that is not JSON...
            result.errors["extract"] += len(page.errors)
            if self.collect:
                quality.count_left_out(result.quality, page.errors)
            shown = "; ".join(f"{k}: {v}" for k, v in list(page.errors.items())[:5])
            shown = redact(shown, self.secrets)
            result.url_events.append(
                (
                    events.PAGE_ERROR,
                    {"url": claimed.request.describe(), "class": "extract", "error": shown},
                )
            )

    def _discover(self, link: str | Request, depth: int, kind: str, result: BatchResult) -> None:
        if isinstance(link, Request):
            found: Request | None = link if not link.is_plain_get else None
            canonical = link.url  # readers canonicalise the requests they build
        else:
            found = None
            canonical = urls.canonicalize(link, ignore_params=self.ignore_params)
        if not self.scope.allows(canonical, depth):
            return
        try:
            guard.check_url(canonical, allowlist=self.allowlist)
        except guard.Refused as refused:
            result.errors["refused"] += 1
            result.url_events.append(
                (
                    events.URL_REFUSED,
                    {"url": canonical, "class": "refused", "error": refused.reason},
                )
            )
            return
        key = request_hash(found) if found is not None else urls.url_hash(canonical)
        result.links.append(frontier.Link(canonical, key, depth, kind, found))

    def _bid_url(self, url: str, canonical: str | None) -> str:
        """A page's rel=canonical names the bid when it stays in scope; else the URL fetched."""
        if canonical:
            canonical = urls.canonicalize(canonical, ignore_params=self.ignore_params)
            if self.scope.allows(canonical, 0):
                return canonical
        return url


def _page_of(claimed: frontier.Claimed, response: Response, *, is_item: bool) -> dict[str, Any]:
    """What the sandbox needs to know of a fetched page besides its body, whichever reads it."""
    return {
        "url": response.url,
        "want_links": not is_item,
        "want_fields": is_item,
        "request": claimed.request,
        "status": response.status or 200,
        "link_next": response.link_next,
    }
