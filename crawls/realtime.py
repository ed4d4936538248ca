"""The one door to the channel layer: group names, and publishing from sync or async code.

The channel layer is only a doorbell: every message also lives in the CrawlEvent log, and
consumers re-read the log on connect and when they see a gap in sequences. So publishing never
raises and never blocks the caller: sync callers (Celery workers, services) hand the message to
one background event loop per process, which sends messages strictly in order over one set of
Redis connections (calling async_to_sync(group_send) per message would open a loop and a pool
each time: the channels-redis leak this module exists to avoid).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable

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
