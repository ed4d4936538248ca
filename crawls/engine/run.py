"""The crawl loop, a pipeline: up to CRAWL_BATCH_SIZE leased URLs in flight (the fetcher sends
CRAWL_CONCURRENCY at a time) → extract each page as it arrives → store the pages done in groups →
publish, until the frontier is empty, the crawl is cancelled or its time is up.

A group is stored as soon as it pays (see _Runner._process): on a sequential pager, as soon as
the listing page naming the next one is read. The links a group finds go into the frontier
already leased to this run (up to its window), so they are fetched right after the commit
without a claim; the rest are claimed. Any number of processes may run the loop for one crawl at
once: the frontier's leases divide the work, and each group is stored in one transaction (bids,
new links, URL states, counters, events), so a worker killed at any point loses nothing and
duplicates nothing (its leases expire to another run). Network work runs on an asyncio loop
owned by the run; database work is synchronous, between groups (fetches stay in flight).

Around it: reading one page into the group (engine/pages.py), what a crawl may fetch
(engine/scope.py), the cancel watch during a group (engine/cancel.py), state transitions
(engine/lifecycle.py), progress figures (engine/progress.py), the database outage wait
(engine/outage.py).
"""

from __future__ import annotations

import asyncio
import collections
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
from crawls.engine.fetch import Fetcher
from crawls.engine.outage import DATABASE_DOWN, Outage
from crawls.engine.pages import BatchResult, Pages
from crawls.engine.scope import fetch_settings
from crawls.models import Crawl
from project import logs

logger = logging.getLogger(__name__)

IDLE_POLL = 0.5  # seconds between looks at a frontier whose last URLs others hold


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
        self.owner = owner
        self.pages = Pages(self.source, parsed)
        # Leased URLs in flight at most (and pages stored together at most).
        self.batch_size = settings.CRAWL_BATCH_SIZE
        self.lease = settings.CRAWL_LEASE_SECONDS
        self.last_progress = 0.0
        self.url_events_left = settings.CRAWL_MAX_URL_EVENTS
        # The pipeline: fetches in flight (their claimed URLs), and URLs leased to this run
        # when its last group stored the links to them, not yet sent.
        self.inflight: dict[asyncio.Future, frontier.Claimed] = {}
        # Fetches done and not yet handled, and the wait for the next one (cheaper than
        # asyncio.wait over every fetch in flight at each page).
        self.completed: collections.deque[asyncio.Future] = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.ready: list[frontier.Claimed] = []
        self.more = True  # the last claim got all it asked for
        self.low_water = settings.CRAWL_CONCURRENCY
        self.group_seconds = settings.CRAWL_GROUP_SECONDS
        self.watch = cancel.CancelWatch(crawl.pk)

    def run(self) -> lifecycle.RunResult:
        loop = asyncio.new_event_loop()
        fetcher = Fetcher(fetch_settings(self.source))
        loop.run_until_complete(fetcher.__aenter__())
        try:
            return self._loop(loop, fetcher)
        finally:
            self._drop(loop)
            self.pages.close()
            loop.run_until_complete(fetcher.__aexit__(None, None, None))
            loop.close()

    def _drop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget the fetches in flight and the URLs not sent (their leases are given back or
        expire to another run)."""
        inflight, self.inflight, self.ready = self.inflight, {}, []
        self.completed.clear()
        running = list(inflight)
        for task in running:
            task.cancel()
        if running:
            loop.run_until_complete(asyncio.gather(*running, return_exceptions=True))
        self.completed.clear()
        for claimed in inflight.values():
            self.pages.forget(claimed)

    def _loop(self, loop: asyncio.AbstractEventLoop, fetcher: Fetcher) -> lifecycle.RunResult:
        unsaved: BatchResult | None = None  # fetched and extracted, not yet committed
        while True:
            try:
                if unsaved is not None:
                    self._commit(unsaved)
                    unsaved = None
                if self.outage.ended():
                    # Whatever this run had claimed and not stored goes back to the frontier.
                    self._drop(loop)
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
                # PostgreSQL is gone (stopped, restarting, unreachable): keep what this group
                # found and wait for it, instead of failing the crawl or waiting for the sweep.
                self.outage.wait(exc)

    def _step(
        self, loop: asyncio.AbstractEventLoop, fetcher: Fetcher
    ) -> BatchResult | lifecycle.RunResult | None:
        """Top up the fetches in flight (the URLs leased at the last commit, then claims) and
        wait for the next group of pages to store; None when others hold the last URLs; or end
        the run (a RunResult)."""
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
        batch, self.ready = self.ready, []
        room = self.batch_size - len(self.inflight) - len(batch)
        busy = bool(self.inflight or batch)
        if room > 0 or not busy:
            # A suspect (a URL whose lease expired) is fetched alone: only when nothing is.
            claimed = frontier.frontier_claim(
                crawl_id=crawl.pk,
                owner=self.owner,
                limit=max(room, 0),
                lease_seconds=self.lease,
                suspects=not busy,
            )
            self.more = len(claimed) >= room  # the frontier may hold more to claim
            batch += claimed
        if not batch and not given_up and not self.inflight:
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
        self._send(loop, fetcher, batch)
        result = loop.run_until_complete(self._process()) if self.inflight else BatchResult()
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
            "batch of %d pages: %d items, %d links, %d errors; %d in flight",
            len(result.outcomes), len(result.items), len(result.links),
            sum(result.errors.values()), len(self.inflight),
        )  # fmt: skip
        return result

    def _send(
        self, loop: asyncio.AbstractEventLoop, fetcher: Fetcher, batch: list[frontier.Claimed]
    ) -> None:
        """Start fetching `batch` (conditional GETs for the bids already stored)."""
        if not batch:
            return
        validators = store.validators_for(
            source_id=self.source.pk,
            url_hashes=[c.url_hash for c in batch if c.kind == "item"],
        )
        for claimed in batch:
            conditional = _conditional(validators.get(claimed.url_hash))
            task = loop.create_task(self._fetch(fetcher, claimed, conditional))
            task.add_done_callback(self._done)
            self.inflight[task] = claimed

    def _done(self, task: asyncio.Future) -> None:
        self.completed.append(task)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def _next(self, timeout: float) -> list[asyncio.Future]:
        """The fetches done since the last call, waiting up to `timeout` for one."""
        if not self.completed and timeout > 0:
            loop = asyncio.get_running_loop()
            self.waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, lambda: waiter.done() or waiter.set_result(None))
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
        done = [task for task in self.completed if task in self.inflight]
        self.completed.clear()
        return done

    async def _fetch(self, fetcher: Fetcher, claimed: frontier.Claimed, conditional: dict):
        """Fetch one page and have the sandbox read it at once (pages.read_ahead)."""
        response = await fetcher.fetch(claimed.request, **conditional)
        await self.pages.read_ahead(claimed, response)
        return response

    # --- one group: network and parsing ------------------------------------------------------

    async def _process(self) -> BatchResult:
        """Extract pages as their fetches complete, until a group is worth storing: fewer than
        CRAWL_CONCURRENCY fetches are left while links were found or the frontier has more
        (the next fetches wait for this commit),
        CRAWL_BATCH_SIZE pages, CRAWL_GROUP_SECONDS since the first, a publisher error, or
        nothing left in flight. The fetches still running stay in flight for the next group.
        A cancel is looked for every CRAWL_CANCEL_CHECK_SECONDS meanwhile: then the pages done
        so far are stored at once, so that a cancel waits for at most one page's extraction
        and one commit (the fetches in flight are dropped when the run ends)."""
        result = BatchResult()
        watch = self.watch
        first = 0.0
        while self.inflight:
            timeout = watch.interval
            if first:
                timeout = min(timeout, max(first + self.group_seconds - time.monotonic(), 0))
            done = await self._next(timeout)
            for task in sorted(done, key=lambda t: self.inflight[t].id):
                claimed = self.inflight.pop(task)
                self.pages.handle(claimed, task.result(), result)
                result.last_url = claimed.url
                first = first or time.monotonic()
            if await watch.cancelled():
                return result
            if first and (
                (len(self.inflight) < self.low_water and (result.links or self.more))
                or len(result.outcomes) >= self.batch_size
                or time.monotonic() - first >= self.group_seconds
                or result.publisher_error is not None
            ):
                return result
        return result

    # --- one group: one transaction ----------------------------------------------------------

    def _commit(self, result: BatchResult) -> None:
        crawl = self.crawl
        now = timezone.now()
        with transaction.atomic():
            # The crawl row lock orders concurrent workers' batches (counters, max_pages).
            locked = (
                Crawl.objects.select_for_update()
                .only("pages_total", "errors", "quality")
                .get(pk=crawl.pk)
            )
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
                # Leased to this run as they go in: fetched next, without a claim.
                lease_owner=self.owner,
                lease_seconds=self.lease,
                lease_limit=self.batch_size - len(self.inflight) - len(self.ready),
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
        self.ready.extend(extended.claimed)
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
