"""WebSocket streams of crawl events: one crawl (lossless), a workspace overview, notifications.

The channel layer is only a doorbell. A crawl stream joins its group (through the process's
realtime.Hub) before reading the CrawlEvent log, sends each sequence once and in order, and
re-reads the log on a gap, after a layer failure and when the hub's safety net (every
STREAM_CHECK_SECONDS) finds it behind the log. docs/live.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from crawls import realtime
from crawls.streams import (
    LOG_PAGE,
    Caller,
    Cursor,
    caller_from,
    crawl_workspace_for,
    ended_by,
    log_after,
    log_heads,
    non_negative_int,
    workspace_snapshot,
)
from project import dbscope

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def query_value(scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[-1] if values else None


def bearer_token(scope) -> str | None:
    """`Authorization: Bearer …` of the handshake, else `?token=` (browsers cannot set headers)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and raw.strip():
                return raw.strip()
    return query_value(scope, "token")


# --- Consumers --------------------------------------------------------------------------------


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """Authenticated stream whose layer receive survives Redis failures and that has a ticker.

    Handlers touch the database only through database_sync_to_async (which closes stale
    connections itself), so dispatch skips Channels' per-message hop to a thread.
    """

    check_seconds: float | None = None  # None: no periodic stream.check

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        self.joined: list[str] = []
        self.caller: Caller | None = None
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self._layer_receive, self._tick], self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return json.loads(text_data)
        except ValueError:
            return None  # ignored, rather than ending the stream with 1011

    async def _layer_receive(self) -> dict:
        try:
            return await self.channel_layer.receive(self.channel_name)
        except Exception:
            logger.warning("channel layer receive failed on %s", self.channel_name, exc_info=True)
            realtime.layer_failed()
        return await self._rejoin()

    async def _tick(self) -> dict:
        """stream.check every check_seconds; stream.resync after a layer failure in the process."""
        failure = realtime.layer_failure()
        try:
            await asyncio.wait_for(failure.wait(), self.check_seconds)
        except TimeoutError:
            return {"type": "stream.check"}
        # Another consumer's receive failed: Redis may have restarted and forgotten our groups.
        return await self._rejoin()

    async def _rejoin(self) -> dict:
        await asyncio.sleep(settings.STREAM_RETRY_SECONDS)
        while not await self.join(self.joined):
            await asyncio.sleep(settings.STREAM_RETRY_SECONDS)
        return {"type": "stream.resync"}

    async def authenticate(self) -> Caller | None:
        self.caller = await database_sync_to_async(caller_from)(
            self.scope.get("user"), bearer_token(self.scope)
        )
        if self.caller is not None:  # a token's workspace, or the user's (project/dbscope.py)
            dbscope.set_scope(self.caller.db_scope)
        return self.caller

    async def join(self, groups: list[str]) -> bool:
        """Join `groups` (again after a failure); False when the layer is unreachable."""
        self.joined = groups
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.warning("channel layer group_add failed: %s", groups)
            return False
        return True

    async def refuse(self, code: int) -> None:
        await self.accept()  # a close code reaches the client only after the handshake
        await self.close(code)

    async def websocket_disconnect(self, message):
        for group in self.joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)
        raise StopConsumer

    async def stream_check(self, message):
        pass

    async def stream_resync(self, message):
        pass


class CrawlEventConsumer(StreamConsumer):
    """/ws/crawls/<id>/: the crawl's log after `after`, then live; closes 1000 after the end.

    Live messages come through the process's hub (one group membership per crawl and process).
    When the stream is idle (no handler running, nothing queued) and the message is the next
    sequence, the hub's own task sends the text it encoded once (`hub_message`): no queue, no
    wake-up of this consumer's task, no JSON encoding per socket. Otherwise the message is
    queued and handled in order by this consumer's task as before. daphne's send never
    suspends, and the cursor moves before the send, so the two paths cannot interleave.
    """

    check_seconds = None  # the hub runs the safety net for every stream of the process

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.hub: realtime.Hub | None = None
        self.busy = False  # a handler of this consumer is running (it may be awaiting)

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.busy = True
        try:
            await super().dispatch(message)
        finally:
            self.busy = False

    async def _layer_receive(self) -> dict[str, Any]:
        return await self.queue.get()

    async def hub_message(self, message: dict[str, Any], text: str) -> None:
        verdict = self.cursor.judge(message)
        if verdict == Cursor.SKIP:  # sent already (or finished): the cursor never goes back
            return
        if verdict == Cursor.GAP or self.busy or not self.queue.empty():
            self.queue.put_nowait(message)
            return
        self.cursor.sent(message)
        await self.send(text_data=text)
        if self.cursor.finished:
            await self.close(CLOSE_NORMAL)

    def hub_notice(self, message: dict[str, Any]) -> None:
        self.queue.put_nowait(message)

    def hub_behind(self, head: int) -> bool:
        return not self.cursor.finished and self.cursor.last < head

    async def join(self, groups: list[str]) -> bool:
        self.joined = groups
        self.hub = realtime.hub(
            retry_seconds=settings.STREAM_RETRY_SECONDS,
            refresh_seconds=settings.STREAM_CHECK_SECONDS,
            # The process's hub outlives the consumer that made it and serves every workspace:
            # it reads only the log heads of crawls its subscribers were let into.
            heads=database_sync_to_async(dbscope.bound(dbscope.SYSTEM, log_heads)),
        )
        await self.hub.join(self.crawl_id, self)
        return True

    async def websocket_disconnect(self, message):
        if self.hub is not None:
            await self.hub.leave(self.crawl_id, self)
        raise StopConsumer

    async def websocket_connect(self, message):
        self.crawl_id = int(self.scope["url_route"]["kwargs"]["crawl_id"])
        self.cursor = Cursor()
        if await self.authenticate() is None:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        workspace = await database_sync_to_async(crawl_workspace_for)(self.caller, self.crawl_id)
        if workspace is None:
            return await self.refuse(CLOSE_NOT_FOUND)
        await self.accept()
        # Join before reading the log: an event committed meanwhile is in one or the other.
        await self.join([realtime.crawl_group(self.crawl_id)])
        await self.start_at(non_negative_int(query_value(self.scope, "after")) or 0)

    async def receive_json(self, content, **kwargs):
        after = non_negative_int(content.get("after")) if isinstance(content, dict) else None
        if after is not None:  # re-position: replay from the log after `after`
            await self.start_at(after)

    async def crawl_event(self, message):
        verdict = self.cursor.judge(message)
        if verdict == Cursor.SEND:
            await self.deliver(message)
        elif verdict == Cursor.GAP:  # a doorbell message was lost: the log has it
            await self.catch_up()

    async def stream_check(self, message):
        if self.joined:
            await self.catch_up()

    async def stream_resync(self, message):
        if self.joined:
            await self.catch_up()

    async def start_at(self, after: int) -> None:
        """Replay the log after `after`; a client that already has the final event is done."""
        self.cursor = Cursor(after)
        await self.catch_up()
        nothing_new = after and self.cursor.last == after
        if nothing_new and await database_sync_to_async(ended_by)(self.crawl_id, after):
            await self.close(CLOSE_NORMAL)
            self.cursor.finished = True

    async def catch_up(self) -> None:
        """Send every logged event after the cursor, page by page."""
        while not self.cursor.finished:
            page = await database_sync_to_async(log_after)(self.crawl_id, self.cursor.last)
            for message in page:
                await self.deliver(message)
            if len(page) < LOG_PAGE:
                return

    async def deliver(self, message: dict) -> None:
        if self.cursor.judge(message) != Cursor.SEND:
            return
        await self.send_json(message)
        self.cursor.sent(message)
        if self.cursor.finished:
            await self.close(CLOSE_NORMAL)


class WorkspaceEventConsumer(StreamConsumer):
    """/ws/workspace/: a snapshot of the workspace's crawls, then every event live."""

    async def websocket_connect(self, message):
        if await self.authenticate() is None:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        workspace_ids = await database_sync_to_async(self.caller.workspace_ids)()
        wanted = query_value(self.scope, "workspace")
        if wanted is not None:
            workspace_ids = [w for w in workspace_ids if str(w) == wanted]
            if not workspace_ids:
                return await self.refuse(CLOSE_NOT_FOUND)
        self.workspace_ids = workspace_ids
        await self.accept()
        await self.join([realtime.workspace_group(w) for w in workspace_ids])
        await self.send_snapshot()

    async def send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(workspace_snapshot)(self.workspace_ids)
        await self.send_json(snapshot)

    async def crawl_event(self, message):
        await self.send_json(message)

    async def stream_resync(self, message):
        # Events may have been missed while the layer was down: the snapshot is the truth.
        if self.joined:
            await self.send_snapshot()


class NotificationConsumer(StreamConsumer):
    """/ws/notifications/: forwards the caller's notification messages as they are."""

    async def websocket_connect(self, message):
        if await self.authenticate() is None:
            return await self.refuse(CLOSE_UNAUTHENTICATED)
        await self.accept()
        await self.join([realtime.notifications_group(self.caller.user.id)])

    async def notification_message(self, message):
        await self.send_json(message)
