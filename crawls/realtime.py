"""The one door to the channel layer: group names, and publishing from sync or async code.

The channel layer is only a doorbell: every message also lives in the CrawlEvent log, and
consumers re-read the log on connect and when they see a gap in sequences. So publishing never
raises and never blocks the caller: sync callers (Celery workers, services) hand the message to
one background event loop per process, which sends messages strictly in order over one set of
Redis connections (calling async_to_sync(group_send) per message would open a loop and a pool
each time: the channels-redis leak this module exists to avoid). On the receiving side, `Hub`
holds a process's one membership per crawl group and fans its messages out in memory: it encodes
each message once and hands it to every subscriber of the process, and it runs the safety-net
read of the log heads once per crawl and process (docs/live.md, "How nothing is lost").
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

logger = logging.getLogger(__name__)


def crawl_group(crawl_id: int) -> str:
    return f"crawl-{crawl_id}"


def workspace_group(workspace_id: int) -> str:
    return f"workspace-{workspace_id}"


def notifications_group(user_id: int) -> str:
    return f"notifications-{user_id}"


async def apublish(groups: Iterable[str], message: dict, *, layer=None) -> None:
    """Send `message` to every group, from async code. Failures are logged, not raised."""
    layer = layer or get_channel_layer()
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:
            logger.warning("channel layer publish to %s failed", group, exc_info=True)


class _Publisher:
    """A daemon thread running one event loop that drains a queue of messages in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        # A layer instance of its own: the process's shared one may be in use on other loops.
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[list[str], dict] | None] = asyncio.Queue()
        self.idle = threading.Event()
        self.idle.set()
        self.pending = 0
        self.lock = threading.Lock()
        thread = threading.Thread(target=self._run, name="realtime-publisher", daemon=True)
        thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        while True:
            item = await self.queue.get()
            if item is not None:
                await apublish(*item, layer=self.layer)
            with self.lock:
                self.pending -= 1
                if self.pending == 0:
                    self.idle.set()

    def submit(self, groups: list[str], message: dict) -> None:
        with self.lock:
            self.pending += 1
            self.idle.clear()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (groups, message))


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _get_publisher() -> _Publisher:
    global _publisher  # one publisher per process, made on first use
    with _publisher_lock:
        # A forked child (Celery prefork) inherits the object but not the thread: start anew.
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


def publish(groups: Iterable[str], message: dict) -> None:
    """Queue `message` for every group, from sync code; returns at once."""
    _get_publisher().submit(list(groups), message)


def flush(timeout: float = 5.0) -> bool:
    """Wait until every queued message was handed to the layer (tests, shutdown)."""
    return _publisher is None or _publisher.idle.wait(timeout)


class Subscriber(Protocol):
    """What the hub hands messages to (crawls.consumers.CrawlEventConsumer)."""

    async def hub_message(self, message: dict, text: str) -> None:
        """A live message of the subscriber's crawl and its JSON text (encoded once)."""

    def hub_notice(self, message: dict) -> None:
        """{"type": "stream.resync"} or {"type": "stream.check"}: queue it, do not send."""

    def hub_behind(self, head: int) -> bool:
        """Whether the subscriber has not yet sent sequence `head` (and may need to)."""


# crawl id -> the highest sequence in its log (crawls.streams.log_heads, made async)
Heads = Callable[[list[int]], Awaitable[dict[int, int]]]


class Hub:
    """A process's one subscription to crawl groups, fanned out to local subscribers.

    The layer then delivers each event once per process instead of once per WebSocket client
    (channels-redis pops every delivery in its own round trip), and the hub encodes it once.
    A layer failure re-joins every group once Redis answers, and hands {"type":
    "stream.resync"} to every subscriber. Every refresh_seconds the hub renews its groups and,
    with `heads`, reads the head of each crawl's log once: a subscriber still behind the head
    of the check before gets {"type": "stream.check"} (the safety net: one query per crawl and
    process, not one per socket; an event whose doorbell was lost arrives within two intervals).
    """

    def __init__(
        self, layer, retry_seconds: float, refresh_seconds: float, heads: Heads | None = None
    ) -> None:
        self.layer = layer
        self.retry_seconds = retry_seconds
        self.refresh_seconds = refresh_seconds
        self.heads = heads
        self.loop = asyncio.get_running_loop()
        self.channel: str | None = None
        self.members: dict[int, set[Subscriber]] = {}
        self.previous_heads: dict[int, int] = {}  # each crawl's log head at the last check
        self.tasks: list[asyncio.Task] = []

    async def join(self, crawl_id: int, member: Subscriber) -> None:
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            self.tasks = [
                asyncio.ensure_future(self._run()),
                asyncio.ensure_future(self._refresh()),
            ]
        first = crawl_id not in self.members
        self.members.setdefault(crawl_id, set()).add(member)
        if first:
            try:
                await self.layer.group_add(crawl_group(crawl_id), self.channel)
            except Exception:
                logger.warning("channel layer group_add failed for crawl %s", crawl_id)

    async def leave(self, crawl_id: int, member: Subscriber) -> None:
        members = self.members.get(crawl_id, set())
        members.discard(member)
        if not members and self.members.pop(crawl_id, None) is not None:
            try:
                await self.layer.group_discard(crawl_group(crawl_id), self.channel)
            except Exception:
                logger.warning("channel layer group_discard failed for crawl %s", crawl_id)

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                logger.warning("channel layer receive failed on the hub", exc_info=True)
                layer_failed()
                await self._recover()
                continue
            await self.fan_out(message)

    async def fan_out(self, message: dict) -> None:
        """Hand `message` to every subscriber of its crawl, encoded once for all of them."""
        members = self.members.get(message.get("crawl"))  # type: ignore[arg-type]
        if not members:
            return
        text = json.dumps(message)
        for member in list(members):  # a subscriber may leave while another one sends
            try:
                await member.hub_message(message, text)
            except Exception:
                logger.exception("hub delivery to a subscriber failed")

    async def _refresh(self) -> None:
        """Re-join every group now and then: a Redis restarted unnoticed (a client that
        reconnected by itself) or the layer's group expiry must not end live delivery. Then
        the safety net: subscribers behind their crawl's log head re-read it."""
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self._join_all()
            except Exception:
                logger.warning("channel layer group refresh failed")
            try:
                await self.check()
            except Exception:
                logger.warning("stream safety-net check failed", exc_info=True)

    async def check(self) -> None:
        """Read every crawl's log head once; nudge the subscribers that have still not sent
        the head read at the check before: an event's doorbell gets a whole interval to ring
        (compared with the head of now, every check would find every socket of a busy crawl
        behind an event in flight and send them all to the log at once)."""
        if self.heads is None or not self.members:
            return
        heads = await self.heads(list(self.members))
        previous, self.previous_heads = self.previous_heads, heads
        for crawl_id, head in previous.items():
            for member in list(self.members.get(crawl_id, ())):
                if member.hub_behind(head):
                    member.hub_notice({"type": "stream.check"})

    async def _join_all(self) -> None:
        for crawl_id in list(self.members):
            await self.layer.group_add(crawl_group(crawl_id), self.channel)

    async def _recover(self) -> None:
        """Re-join every group (a restarted Redis forgot them), then tell every subscriber."""
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self._join_all()
            except Exception:
                logger.warning("channel layer still unreachable; retrying")
                continue
            for members in self.members.values():
                for member in members:
                    member.hub_notice({"type": "stream.resync"})
            return


_hub: Hub | None = None
_failure: asyncio.Event | None = None


def hub(*, retry_seconds: float, refresh_seconds: float, heads: Heads | None = None) -> Hub:
    """The hub of the running event loop (daphne runs one), made on first use."""
    global _hub  # one per process and loop
    if _hub is None or _hub.loop is not asyncio.get_running_loop():
        _hub = Hub(get_channel_layer(), retry_seconds, refresh_seconds, heads)
    return _hub


def layer_failure() -> asyncio.Event:
    """Set when a receive on the process's channel layer fails (then replaced by a new one)."""
    global _failure  # one per process: daphne serves every consumer from one event loop
    if _failure is None:
        _failure = asyncio.Event()
    return _failure


def layer_failed() -> None:
    """Wake every stream of the process: a restarted Redis forgot their groups."""
    global _failure
    failure, _failure = layer_failure(), asyncio.Event()
    failure.set()
