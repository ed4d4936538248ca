"""The crawl loop: claim a batch → fetch it concurrently → extract → store → publish, until the
frontier is empty, the crawl is cancelled or its time is up.

Any number of processes may run the loop for one crawl at once: the frontier's leases divide the
work, and each batch is stored in one transaction (bids, new links, URL states, counters,
events), so a worker killed at any point loses nothing and duplicates nothing. Network work runs
on an asyncio loop owned by the run; database work is synchronous, between batches.

Around it: reading one page into the batch (engine/pages.py), what a crawl may fetch
(engine/scope.py), the cancel watch during a batch (engine/cancel.py), state transitions
(engine/lifecycle.py), progress figures (engine/progress.py), the database outage wait
(engine/outage.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crawls import events
from crawls.engine import (
    cancel,
    frontier,
    kinds,
    lifecycle,
    progress,
    quality,
    rules,
    shutdown,
    store,
)
from crawls.engine.fetch import Fetcher, Response
from crawls.engine.outage import DATABASE_DOWN, Outage
from crawls.engine.pages import BatchResult, Pages
from crawls.engine.scope import fetch_settings
from crawls.models import Crawl
from project import logs, tracing

logger = logging.getLogger(__name__)

IDLE_POLL = 0.5  # seconds between looks at a frontier whose last URLs others hold


def crawl_run(crawl_id: int, *, owner: str) -> lifecycle.RunResult:
    """Work on a crawl until nothing is left for this worker; see the module docstring."""
    token = logs.crawl_id_var.set(str(crawl_id))
    outage = Outage(crawl_id)
    try:
        while True:
            try:
                return _crawl_run(crawl_id, owner=owner, outage=outage)
            except DATABASE_DOWN as exc:
                outage.wait(exc)
    finally:
        logs.crawl_id_var.reset(token)  # a caller's later lines are not this crawl's


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
        self.owner = owner
        self.pages = Pages(self.source, parsed)
        self.batch_size = settings.CRAWL_BATCH_SIZE
        self.lease = settings.CRAWL_LEASE_SECONDS
        self.last_progress = 0.0
        self.url_events_left = settings.CRAWL_MAX_URL_EVENTS

    def run(self) -> lifecycle.RunResult:
        loop = asyncio.new_event_loop()
        fetcher = Fetcher(fetch_settings(self.source))
        loop.run_until_complete(fetcher.__aenter__())
        try:
            return self._loop(loop, fetcher)
        finally:
            self.pages.close()
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
        with tracing.span("crawl.batch", crawl_id=crawl.pk, pages=len(batch)):
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
                tracing.page(
                    self._fetch(fetcher, c, _conditional(validators.get(c.url_hash))),
                    url=c.url,
                    kind=c.kind,
                )
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
                    self.pages.handle(claimed, task.result(), result)
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
            for claimed in claimed_by.values():  # read ahead and not handled (a cancel)
                self.pages.forget(claimed)
        return result

    async def _fetch(
        self, fetcher: Fetcher, claimed: frontier.Claimed, conditional: dict[str, str]
    ) -> Response:
        """Fetch one page and have the sandbox read it at once (pages.read_ahead)."""
        response = await fetcher.fetch(claimed.request, **conditional)
        await self.pages.read_ahead(claimed, response)
        return response

    # --- one batch: one transaction ----------------------------------------------------------

    @tracing.traced("crawl.store")
    def _commit(self, result: BatchResult) -> None:
        crawl = self.crawl
        now = timezone.now()
        with transaction.atomic():
            # The crawl row lock orders concurrent workers' batches (counters, max_pages).
            locked = (
                Crawl.objects.select_for_update()
                .only("status", "pages_total", "errors", "quality")
                .get(pk=crawl.pk)
            )
            if locked.status in Crawl.FINISHED:
                # Another process ended the crawl (a cancel, the time limit) while this batch was
                # in flight: its final event is written, so nothing may follow it. The batch is
                # dropped and its URLs handed back.
                frontier.frontier_release(crawl_id=crawl.pk, owner=self.owner)
                return
            stored = store.bids_store(
                crawl_id=crawl.pk,
                source_id=self.source.pk,
                workspace_id=crawl.workspace_id,
                items=result.items,
                not_modified=result.not_modified,
                now=now,
            )
            extended = frontier.frontier_extend(
                crawl_id=crawl.pk,
                workspace_id=crawl.workspace_id,
                links=result.links,
                room=self.source.max_pages - locked.pages_total,
                too_deep=self.pages.scope.too_deep_hashes(),
            )
            added = extended.count
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
                quality=quality.counts_merge(locked.quality, result.quality),
                heartbeat_at=now,
                # Links left out (max_pages, max_depth): no bid is marked removed after it.
                **({"capped": True} if extended.left_out else {}),
            )
            self._emit(result, stored)
        self.pages.scope.too_deep.clear()

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
