"""The crawl loop: claim a batch → fetch it concurrently → extract → store → publish, until the
frontier is empty, the crawl is cancelled or its time is up.

Any number of processes may run the loop for one crawl at once: the frontier's leases divide the
work, and each batch is stored in one transaction (bids, new links, URL states, counters,
events), so a worker killed at any point loses nothing and duplicates nothing. Network work runs
on an asyncio loop owned by the run; database work is synchronous, between batches.

Around it: what a crawl may fetch (engine/scope.py), the cancel watch during a batch
(engine/cancel.py), state transitions (engine/lifecycle.py), progress figures
(engine/progress.py), the database outage wait (engine/outage.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crawls import events
from crawls.engine import (
    cancel,
    extract,
    frontier,
    guard,
    kinds,
    lifecycle,
    progress,
    rules,
    sandbox,
    shutdown,
    store,
    urls,
)
from crawls.engine.fetch import Fetcher, Response
from crawls.engine.outage import DATABASE_DOWN, Outage
from crawls.engine.request import Request, item_hash, request_hash
from crawls.engine.scope import Scope, allowlist, fetch_settings  # also run.allowlist() callers
from crawls.models import Crawl
from project import logs

logger = logging.getLogger(__name__)

IDLE_POLL = 0.5  # seconds between looks at a frontier whose last URLs others hold


@dataclass(slots=True)
class BatchResult:
    """Everything one batch produced, stored together in one transaction."""

    outcomes: list[frontier.Outcome] = field(default_factory=list)
    items: list[store.Item] = field(default_factory=list)
    not_modified: list[bytes] = field(default_factory=list)
    links: list[frontier.Link] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    url_events: list[tuple[str, dict]] = field(default_factory=list)
    last_url: str = ""
    # The publisher's error (an API's error envelope): the crawl fails with it once stored.
    publisher_error: str | None = None


def crawl_run(crawl_id: int, *, owner: str) -> lifecycle.RunResult:
    """Work on a crawl until nothing is left for this worker; see the module docstring."""
    logs.crawl_id_var.set(str(crawl_id))
    outage = Outage(crawl_id)
    while True:
        try:
            return _crawl_run(crawl_id, owner=owner, outage=outage)
        except DATABASE_DOWN as exc:
            outage.wait(exc)


def _crawl_run(crawl_id: int, *, owner: str, outage: Outage) -> lifecycle.RunResult:
    try:
        crawl = Crawl.objects.select_related("source").get(pk=crawl_id)
    except Crawl.DoesNotExist:
        return lifecycle.RunResult("missing")
    if crawl.status in Crawl.FINISHED:
        return lifecycle.RunResult(crawl.status)
    if crawl.cancel_requested:
        lifecycle.crawl_finish(crawl, Crawl.Status.CANCELLED, owner=owner)
        return lifecycle.RunResult(Crawl.Status.CANCELLED)
    if _another_running(crawl):
        # Overlap policy "queue": wait for the source's running crawl to finish.
        Crawl.objects.filter(pk=crawl.pk).update(
            heartbeat_at=timezone.now() + dt.timedelta(seconds=15)
        )
        return lifecycle.RunResult(Crawl.Status.QUEUED, retry_in=15)
    try:
        parsed = kinds.rules_parse(crawl.source.kind, crawl.source.rules)
    except rules.RulesError as exc:
        lifecycle.crawl_finish(
            crawl, Crawl.Status.FAILED, owner=owner, error=f"invalid rules: {exc.errors}"
        )
        return lifecycle.RunResult(Crawl.Status.FAILED)
    lifecycle.mark_running(crawl)
    try:
        return _Runner(crawl, parsed, owner, outage).run()
    except DATABASE_DOWN:
        raise
    except Exception as exc:
        logger.exception("crawl %s failed", crawl_id)
        return lifecycle.fail_or_retry(crawl, owner=owner, error=f"{type(exc).__name__}: {exc}")


def _another_running(crawl: Crawl) -> bool:
    return (
        crawl.status == Crawl.Status.QUEUED
        and Crawl.objects.filter(source_id=crawl.source_id, status=Crawl.Status.RUNNING)
        .exclude(pk=crawl.pk)
        .exists()
    )


class _Runner:
    def __init__(self, crawl: Crawl, parsed: kinds.AnyRules, owner: str, outage: Outage):
        self.crawl = crawl
        self.outage = outage
        self.source = crawl.source
        self.rules = parsed
        self.kind = kinds.kind_of(parsed)
        self.ignore_params = kinds.ignore_params(parsed)
        self.owner = owner
        self.scope = Scope(self.source)
        self.allowlist = allowlist()
        self.batch_size = settings.CRAWL_BATCH_SIZE
        self.lease = settings.CRAWL_LEASE_SECONDS
        self.last_progress = 0.0
        self.url_events_left = settings.CRAWL_MAX_URL_EVENTS
        # Pages are read in a child process, under a budget (see crawls.engine.sandbox).
        self.sandbox = sandbox.Sandbox()
        self.extract_budget = settings.CRAWL_EXTRACT_BUDGET_SECONDS
        self.extract_kill_after = settings.CRAWL_EXTRACT_KILL_GRACE

    def run(self) -> lifecycle.RunResult:
        loop = asyncio.new_event_loop()
        fetcher = Fetcher(fetch_settings(self.source))
        loop.run_until_complete(fetcher.__aenter__())
        try:
            return self._loop(loop, fetcher)
        finally:
            self.sandbox.close()
            loop.run_until_complete(fetcher.__aexit__(None, None, None))
            loop.close()

    def _loop(self, loop: asyncio.AbstractEventLoop, fetcher: Fetcher) -> lifecycle.RunResult:
        unsaved: BatchResult | None = None  # fetched and extracted, not yet committed
        while True:
            try:
                if unsaved is not None:
                    self._commit(unsaved)
                    unsaved = None
                if self.outage.ended():
                    # Whatever this run had claimed and not stored goes back to the frontier.
                    frontier.frontier_release(crawl_id=self.crawl.pk, owner=self.owner)
                outcome = self._step(loop, fetcher)
                if isinstance(outcome, lifecycle.RunResult):
                    return outcome
                if outcome is not None:
                    unsaved = outcome
                    self._commit(unsaved)
                    unsaved = None
                    if outcome.publisher_error is not None:
                        error = f"publisher error: {outcome.publisher_error}"
                        lifecycle.crawl_finish(
                            self.crawl, Crawl.Status.FAILED, owner=None, error=error
                        )
                        return lifecycle.RunResult(Crawl.Status.FAILED)
                self.outage.recovered()
            except DATABASE_DOWN as exc:
                # PostgreSQL is gone (stopped, restarting, unreachable): keep what this batch
                # found and wait for it, instead of failing the crawl or waiting for the sweep.
                self.outage.wait(exc)

    def _step(
        self, loop: asyncio.AbstractEventLoop, fetcher: Fetcher
    ) -> BatchResult | lifecycle.RunResult | None:
        """Claim one batch and fetch and extract it; None when others hold the last URLs; or
        end the run (a RunResult)."""
        crawl = self.crawl
        if shutdown.requested():
            return lifecycle.hand_back(crawl, owner=self.owner)
        state = Crawl.objects.values("status", "cancel_requested", "deadline_at").get(pk=crawl.pk)
        if state["status"] in Crawl.FINISHED:
            return lifecycle.RunResult(state["status"])
        if state["cancel_requested"]:
            lifecycle.crawl_finish(crawl, Crawl.Status.CANCELLED, owner=self.owner)
            return lifecycle.RunResult(Crawl.Status.CANCELLED)
        if state["deadline_at"] and timezone.now() > state["deadline_at"]:
            limit = self.source.time_limit_seconds
            lifecycle.crawl_finish(
                crawl, Crawl.Status.FAILED, owner=self.owner, error=f"time limit ({limit}s)"
            )
            return lifecycle.RunResult(Crawl.Status.FAILED)
        given_up = frontier.frontier_give_up(
            crawl_id=crawl.pk, max_attempts=settings.CRAWL_URL_MAX_ATTEMPTS
        )
        batch = frontier.frontier_claim(
            crawl_id=crawl.pk, owner=self.owner, limit=self.batch_size, lease_seconds=self.lease
        )
        if not batch and not given_up:
            pending = frontier.frontier_pending(crawl_id=crawl.pk)
            if pending.queued == 0 and pending.leased == 0:
                if not frontier.frontier_totals(crawl_id=crawl.pk).get("done"):
                    return lifecycle.fail_or_retry(
                        crawl, owner=self.owner, error="no page could be fetched"
                    )
                lifecycle.crawl_finish(crawl, Crawl.Status.SUCCEEDED, owner=self.owner)
                return lifecycle.RunResult(Crawl.Status.SUCCEEDED)
            # Other workers hold the last URLs; if they die, their leases expire to us.
            Crawl.objects.filter(pk=crawl.pk).update(heartbeat_at=timezone.now())
            time.sleep(IDLE_POLL)
            return None
        validators = store.validators_for(
            source_id=self.source.pk,
            url_hashes=[c.url_hash for c in batch if c.kind == "item"],
        )
        result = loop.run_until_complete(self._process(fetcher, batch, validators))
        for url in given_up:
            result.errors["gave_up"] += 1
            result.url_events.append(
                (
                    events.PAGE_ERROR,
                    {"url": url, "class": "gave_up", "error": "the page stalled or killed its "
                     f"worker {settings.CRAWL_URL_MAX_ATTEMPTS} times"},
                )
            )  # fmt: skip
        logger.info(
            "batch of %d pages: %d items, %d links, %d errors",
            len(batch), len(result.items), len(result.links), sum(result.errors.values()),
        )  # fmt: skip
        return result

    # --- one batch: network and parsing ------------------------------------------------------

    async def _process(self, fetcher: Fetcher, batch, validators) -> BatchResult:
        """Fetch the batch concurrently and extract each page as it arrives. A cancel is looked
        for every CRAWL_CANCEL_CHECK_SECONDS meanwhile: then the fetches still running are
        dropped (their URLs stay leased until the cancel releases them) and the pages done so
        far are stored, so that a cancel waits for at most one page's extraction and one commit."""
        result = BatchResult()
        claimed_by = {
            asyncio.ensure_future(
                fetcher.fetch(c.request, **_conditional(validators.get(c.url_hash)))
            ): c
            for c in batch
        }
        running = set(claimed_by)
        watch = cancel.CancelWatch(self.crawl.pk)
        try:
            while running:
                done, running = await asyncio.wait(
                    running, timeout=watch.interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in sorted(done, key=lambda t: claimed_by[t].id):
                    claimed = claimed_by[task]
                    self._handle(claimed, task.result(), result)
                    result.last_url = claimed.url
                    if await watch.cancelled():
                        return result
                if await watch.cancelled():
                    return result
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        return result

    def _handle(self, claimed: frontier.Claimed, response: Response, result: BatchResult) -> None:
        def fail(error_class: str, error: str, **extra: str) -> None:
            result.errors[error_class] += 1
            result.outcomes.append(
                frontier.Outcome(claimed.id, "failed", response.status, f"{error_class}: {error}")
            )
            event_type = events.URL_REFUSED if error_class == "refused" else events.PAGE_ERROR
            payload = {
                "url": claimed.request.describe(),
                "class": error_class,
                "error": error,
                **extra,
            }
            if response.status:
                payload["status"] = response.status
            result.url_events.append((event_type, payload))

        if not response.ok:
            if response.body and self.kind != kinds.HTML:
                # An API says why in its error envelope (a wrong service key): read it.
                page = self._read(claimed, response, is_item=False, fail=None)
                if page is not None and page.error:
                    result.publisher_error = page.error
                    fail("publisher", page.error)
                    return
            fail(response.error_class, response.error)
            return
        if response.not_modified:
            result.not_modified.append(claimed.url_hash)
            result.outcomes.append(frontier.Outcome(claimed.id, "done", 304, ""))
            return
        is_item = claimed.kind == "item"
        page = self._read(claimed, response, is_item=is_item, fail=fail)
        if page is None:
            return
        if page.error:
            result.publisher_error = page.error
            fail("publisher", page.error)
            return
        if is_item:
            if page.fields is None or "title" in page.errors or not page.fields.get("title"):
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
                    fields=page.fields,
                    content_hash=urls.content_hash(page.fields),
                    etag=response.etag,
                    last_modified=response.last_modified,
                )
            )
            if page.errors:  # optional fields that did not parse: stored as None, reported
                result.errors["extract_field"] += len(page.errors)
        else:
            depth = claimed.depth + 1
            for kind, found in (("list", page.follow), ("item", page.items)):
                for link in found:
                    self._discover(link, depth, kind, result)
            for kind, requests in (("list", page.requests), ("item", page.item_requests)):
                for found_request in requests:
                    self._discover(found_request, depth, kind, result)
            self._records(claimed, page, response, result)
        result.outcomes.append(frontier.Outcome(claimed.id, "done", response.status, ""))

    def _read(self, claimed: frontier.Claimed, response: Response, *, is_item: bool, fail):
        """The page read in the sandbox; None (after `fail`, when given) when it could not be."""
        try:
            page = self.sandbox.extract(
                response.body or b"",
                url=response.url,
                rules=self.rules,
                budget=self.extract_budget,
                kill_after=self.extract_kill_after,
                want_links=not is_item,
                want_fields=is_item,
                request=claimed.request,
                status=response.status or 200,
                link_next=response.link_next,
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
        if self.kind != kinds.HTML and page.errors:
            # Items left out (no key, a required field missing), a body that is not JSON...
            result.errors["extract"] += len(page.errors)
            shown = "; ".join(f"{k}: {v}" for k, v in list(page.errors.items())[:5])
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

    # --- one batch: one transaction ----------------------------------------------------------

    def _commit(self, result: BatchResult) -> None:
        crawl = self.crawl
        now = timezone.now()
        with transaction.atomic():
            # The crawl row lock orders concurrent workers' batches (counters, max_pages).
            locked = (
                Crawl.objects.select_for_update().only("pages_total", "errors").get(pk=crawl.pk)
            )
            stored = store.bids_store(
                crawl_id=crawl.pk,
                source_id=self.source.pk,
                workspace_id=crawl.workspace_id,
                items=result.items,
                not_modified=result.not_modified,
                now=now,
            )
            added = frontier.frontier_add(
                crawl_id=crawl.pk,
                workspace_id=crawl.workspace_id,
                links=result.links,
                room=self.source.max_pages - locked.pages_total,
            )
            finished = frontier.frontier_finish(owner=self.owner, outcomes=result.outcomes)
            if finished < len(result.outcomes):
                # Our lease ran out and another worker took some URLs: its results count.
                logger.warning("lost %d leases", len(result.outcomes) - finished)
            done = sum(1 for o in result.outcomes if o.state == "done")
            failed = len(result.outcomes) - done
            errors = Counter(locked.errors)
            errors.update(result.errors)
            Crawl.objects.filter(pk=crawl.pk).update(
                pages_done=F("pages_done") + done,
                pages_failed=F("pages_failed") + failed,
                pages_total=locked.pages_total + added,
                items_new=F("items_new") + len(stored.new),
                items_changed=F("items_changed") + len(stored.changed),
                items_unchanged=F("items_unchanged") + stored.unchanged,
                errors=dict(errors),
                heartbeat_at=now,
            )
            self._emit(result, stored)

    def _emit(self, result: BatchResult, stored: store.Stored) -> None:
        crawl = self.crawl

        def append(type_: str, payload: dict) -> None:
            events.event_append(
                crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=type_, payload=payload
            )

        for type_, payload in result.url_events[: max(self.url_events_left, 0)]:
            append(type_, payload)
        self.url_events_left -= len(result.url_events)
        if stored.new or stored.changed:
            append(events.ITEMS, {"new": stored.new, "changed": stored.changed})
        if time.monotonic() - self.last_progress >= settings.CRAWL_PROGRESS_INTERVAL:
            self.last_progress = time.monotonic()
            fresh = Crawl.objects.get(pk=crawl.pk)
            figures = {**lifecycle.crawl_summary(fresh), **progress.crawl_progress(fresh)}
            append(events.PROGRESS, {**figures, "current_url": result.last_url})


def _conditional(validators: tuple[str, str] | None) -> dict:
    if not validators:
        return {}
    etag, last_modified = validators
    return {"etag": etag, "last_modified": last_modified}
