"""The Forest side of bench/crawl.py, imported once Django is set up on the bench database.

One measured run: a new Source (DEMO_RULES) so that every bid is stored as new, `crawl_start`,
then the Crawl row polled until it is finished. The time is `crawl_start` → `Crawl.finished_at`;
CPU and peak RSS are the Celery pool children's (the processes that run the crawl's tasks) with
their extraction sandboxes, PostgreSQL's CPU
that of the bench database's backends. A run that did not store exactly the expected bids, or
whose `crawl.succeeded` event was neither logged nor received from the channel layer, raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from crawls import events, realtime, services
from crawls.demo.board import DEMO_RULES
from crawls.models import Bid, Crawl, CrawlEvent, Workspace
from project.celery import app as celery_app


class BenchError(RuntimeError):
    """A run that did not do what it should: the bench fails rather than print a figure."""


@dataclass
class ForestRun:
    pages: int
    seconds: float  # crawl_start → Crawl.finished_at
    wall_seconds: float  # crawl_start → the bench saw the crawl finished
    cpu_seconds: float  # the worker's pool child
    peak_rss_mb: float  # the pool child's VmHWM over the run
    peak_over_run: bool  # False: the kernel would not reset VmHWM, the peak is over its life
    postgres_cpu_seconds: float | None
    items: int
    events_logged: int
    events_received: int


def workspace_create() -> Workspace:
    user, _ = get_user_model().objects.get_or_create(username="bench")
    return services.workspace_create(owner=user, name="Crawl benchmark")


def worker_wait(
    nodename: str, proc: psutil.Process, *, pool: int = 1, timeout: float = 60
) -> list[psutil.Process]:
    """Wait until the Celery worker answers a ping; return its `pool` pool children."""
    deadline = time.monotonic() + timeout
    while not celery_app.control.ping(destination=[nodename], timeout=0.5):
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            raise BenchError(f"worker {nodename} exited")
        if time.monotonic() > deadline:
            raise BenchError(f"worker {nodename} did not answer within {timeout}s")
    children = proc.children()
    if len(children) != pool:
        raise BenchError(f"worker {nodename} has {len(children)} pool processes, not {pool}")
    return children


def queue_delete(name: str) -> None:
    """Remove the bench's own Celery queue (and its binding) from the shared Redis."""
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


class EventListener:
    """Receives a workspace's crawl events from the channel layer, as the dashboard does."""

    def __init__(self, workspace_id: int):
        self.group = realtime.workspace_group(workspace_id)
        self.messages: queue.Queue[dict] = queue.Queue()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-events", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise BenchError(f"cannot listen to the channel layer: {self._error}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._listen())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)

    async def _listen(self) -> None:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        try:
            channel = await layer.new_channel()
            await layer.group_add(self.group, channel)
        except Exception as exc:
            self._error = exc
            raise
        finally:
            self._ready.set()
        try:
            while True:
                self.messages.put(await layer.receive(channel))
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(self.group, channel)

    def received(self, crawl_id: int, *, until: str, timeout: float = 10) -> int:
        """How many events of the crawl arrived, waiting at most `timeout` for `until`."""
        count, deadline = 0, time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise BenchError(f"crawl {crawl_id}: no {until} event received") from None
            if message.get("crawl") != crawl_id:
                continue
            count += 1
            if message.get("event") == until:
                return count

    def close(self) -> None:
        if self._task is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(5)


def _peak_reset(procs: list[psutil.Process]) -> bool:
    """Reset the processes' peak RSS (VmHWM); False when the kernel or rights do not allow it."""
    try:
        for proc in procs:
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mb(procs: list[psutil.Process]) -> float:
    """The largest peak RSS of the pool children (each runs one crawl task)."""
    peaks = []
    for proc in procs:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
                break
        else:
            peaks.append(proc.memory_info().rss / 2**20)
    return max(peaks)


def _cpu(procs: list[psutil.Process]) -> float:
    """CPU seconds of the pool children and their own children: the extraction sandboxes, live
    (their times so far) or ended (counted in their parent's children_* times)."""
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
        for sub in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                sub_times = sub.cpu_times()
                total += sub_times.user + sub_times.system
    return total


def idle_wait(child: list[psutil.Process], *, timeout: float = 120) -> float:
    """Wait until the worker's pool child is idle (no CPU over half a second): the work a
    finished crawl's subscribers do after its `finished_at` (the analytics read model's
    reconcile, alert matching) is not charged to the next run. Seconds waited."""
    start = time.monotonic()
    before = _cpu(child)
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = _cpu(child)
        if now - before < 0.02:
            break
        before = now
    return time.monotonic() - start


def _postgres_backends() -> dict[int, float]:
    """CPU seconds so far of the bench database's other backends (the worker's connections)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    found = {}
    for pid in pids:
        # A remote server's pids mean nothing here.
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if "postgres" in proc.name() or "postgres" in " ".join(proc.cmdline()[:1]):
                found[pid] = _cpu([proc])
    return found


def crawl_once(
    workspace: Workspace,
    *,
    name: str,
    start_url: str,
    concurrency: int,
    child: list[psutil.Process],
    listener: EventListener,
    expected_urls: set[str] | None,
    expected_pages: int | None,
    max_pages: int,
    timeout: float = 1800,
    kind: str = "html",
    rules: dict | None = None,
    secrets: dict | None = None,
    workers: int | None = None,
) -> ForestRun:
    """Crawl the board once with a new Source (the HTML board with DEMO_RULES, or `kind` with
    `rules` and `secrets`); expected_* None: a warm-up, not checked."""
    source = services.source_create(
        workspace=workspace,
        name=name,
        kind=kind,
        start_urls=[start_url],
        rules=DEMO_RULES if rules is None else rules,
        secrets=secrets or {},
        max_depth=1000,  # listing pages link ±5 pages: ~100 hops from page 1 to the last
        max_pages=max_pages,
        concurrency_per_host=concurrency,
        obey_robots=True,
    )
    tail = idle_wait(child)
    if tail > 2:
        print(f"  (waited {tail:.1f} s for the worker to finish the last crawl's subscribers)",
              file=sys.stderr, flush=True)  # fmt: skip
    resettable = _peak_reset(child)
    cpu_before = _cpu(child)
    postgres_before = _postgres_backends()
    # The worker opens its connections for the task and closes them at its end: sample them.
    postgres_seen = dict(postgres_before)
    started = timezone.now()
    wall_start = time.monotonic()
    crawl = services.crawl_start(source=source, workers=workers)
    deadline = wall_start + timeout
    while crawl.status not in Crawl.FINISHED:
        if time.monotonic() > deadline:
            raise BenchError(f"crawl {crawl.pk} still {crawl.status} after {timeout}s")
        time.sleep(0.1)
        crawl.refresh_from_db(fields=["status"])
        postgres_seen.update(_postgres_backends())
    wall = time.monotonic() - wall_start
    cpu = _cpu(child) - cpu_before
    peak = _peak_rss_mb(child)
    crawl.refresh_from_db()
    postgres = (
        sum(t - postgres_before.get(pid, 0.0) for pid, t in postgres_seen.items())
        if postgres_seen
        else None
    )
    if crawl.status != Crawl.Status.SUCCEEDED:
        raise BenchError(f"crawl {crawl.pk} {crawl.status}: {crawl.error}")
    received = listener.received(crawl.pk, until=events.SUCCEEDED)
    logged = CrawlEvent.objects.filter(crawl=crawl).count()
    if not CrawlEvent.objects.filter(crawl=crawl, type=events.SUCCEEDED).exists():
        raise BenchError(f"crawl {crawl.pk}: no {events.SUCCEEDED} event in its log")
    stored = set(Bid.objects.filter(source=source).values_list("url", flat=True))
    if expected_urls is not None and stored != expected_urls:
        raise BenchError(
            f"crawl {crawl.pk}: {len(stored)} bids in PostgreSQL, {len(expected_urls)} expected "
            f"({len(expected_urls - stored)} missing, {len(stored - expected_urls)} unexpected)"
        )
    if expected_urls is not None and crawl.items_new != len(expected_urls):
        raise BenchError(f"crawl {crawl.pk}: {crawl.items_new} new items counted")
    if expected_pages is not None and crawl.pages_done != expected_pages:
        raise BenchError(f"crawl {crawl.pk}: {crawl.pages_done} pages, {expected_pages} expected")
    return ForestRun(
        pages=crawl.pages_done,
        seconds=(crawl.finished_at - started).total_seconds(),
        wall_seconds=wall,
        cpu_seconds=cpu,
        peak_rss_mb=peak,
        peak_over_run=resettable,
        postgres_cpu_seconds=postgres,
        items=len(stored),
        events_logged=logged,
        events_received=received,
    )
