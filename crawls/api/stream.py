"""GET /api/v1/crawls/<id>/events/stream: a crawl's events as Server-Sent Events (docs/live.md).

An async view, so a waiting client holds no thread: the channel layer rings, the CrawlEvent log
is the truth (read at the start, on a gap, after a layer failure and on every idle check).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse

from crawls import realtime
from crawls.api.errors import envelope
from crawls.streams import Cursor, caller_from, crawl_workspace_for, log_after, non_negative_int
from project import dbscope

logger = logging.getLogger(__name__)


async def crawl_event_stream(request, pk: int):
    """The crawl's events after Last-Event-ID (or ?after=), then live; ends after the final one."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if header and (scheme.lower() != "bearer" or not raw.strip()):
        return _unauthenticated("Expected 'Authorization: Bearer <token>'.")
    user = await request.auser()
    caller = await database_sync_to_async(caller_from)(user, raw.strip() or None)
    if caller is None:
        return _unauthenticated("Invalid or revoked token." if header else "Not authenticated.")
    in_scope = dbscope.bound(caller.db_scope, crawl_workspace_for)
    if await database_sync_to_async(in_scope)(caller, pk) is None:
        return JsonResponse(envelope("not_found", "Not found."), status=404)
    raw_after = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = non_negative_int(raw_after)
    if after is None:
        details = {"after": ["A sequence number (0 or more)."]}
        return JsonResponse(envelope("invalid", "Invalid input: after.", details), status=400)
    response = StreamingHttpResponse(
        _frames(pk, Cursor(after), caller.db_scope),
        content_type="text/event-stream; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold events back
    return response


def _unauthenticated(message: str) -> JsonResponse:
    response = JsonResponse(envelope("not_authenticated", message), status=401)
    response["WWW-Authenticate"] = 'Bearer realm="forest"'
    return response


def frame(message: dict) -> bytes:
    data = json.dumps(message, separators=(",", ":"))
    return f"id: {message['seq']}\nevent: {message['event']}\ndata: {data}\n\n".encode()


async def _frames(crawl_id: int, cursor: Cursor, scope: dbscope.Scope):
    """The stream's body, read after the view returned: its reads run in the caller's scope."""
    read = database_sync_to_async(dbscope.bound(scope, log_after))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = realtime.crawl_group(crawl_id)
    wait = min(settings.STREAM_CHECK_SECONDS, settings.STREAM_HEARTBEAT_SECONDS)
    written = time.monotonic()
    read_log = True
    try:
        await _join(layer, group, channel)  # before the first read of the log
        while not cursor.finished:
            if read_log:
                for message in await read(crawl_id, cursor.last):
                    yield frame(message)
                    cursor.sent(message)
                    written = time.monotonic()
                if cursor.finished:
                    return
            try:
                message = await asyncio.wait_for(layer.receive(channel), wait)
            except TimeoutError:
                # The safety net: a doorbell may have been lost, or Redis restarted empty.
                await _join(layer, group, channel)
                read_log = True
                if time.monotonic() - written >= settings.STREAM_HEARTBEAT_SECONDS:
                    yield b": keep-alive\n\n"
                    written = time.monotonic()
                continue
            except Exception:
                logger.warning("channel layer receive failed on %s", channel, exc_info=True)
                await asyncio.sleep(settings.STREAM_RETRY_SECONDS)
                await _join(layer, group, channel)
                read_log = True
                continue
            verdict = cursor.judge(message)
            read_log = verdict == Cursor.GAP
            if verdict == Cursor.SEND:
                yield frame(message)
                cursor.sent(message)
                written = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            await layer.group_discard(group, channel)


async def _join(layer, group: str, channel: str) -> None:
    try:
        await layer.group_add(group, channel)
    except Exception:
        logger.warning("channel layer group_add failed", exc_info=True)
