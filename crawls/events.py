"""The crawl event log: append (in the caller's transaction), then publish after commit.

Each event gets the next sequence number of its crawl (a counter on the crawl row, so sequences
are gapless and ordered per crawl). After the transaction commits, the event goes to the
channel layer groups of its crawl and workspace, and the subscribers named in
settings.CRAWL_EVENT_SUBSCRIBERS (how notifications and analytics react to crawls without
crawls importing them) take the crawl's log from their positions (crawls.subscribers:
at least once, in order).
"""

from __future__ import annotations

import functools
import logging

from django.db import connection, transaction

from crawls import realtime, subscribers
from crawls.models import CrawlEvent

logger = logging.getLogger(__name__)

# Event types
QUEUED = "crawl.queued"
STARTED = "crawl.started"
PROGRESS = "crawl.progress"
RETRYING = "crawl.retrying"
RESUMED = "crawl.resumed"
SUCCEEDED = "crawl.succeeded"
FAILED = "crawl.failed"
CANCELLED = "crawl.cancelled"
DEGRADED = "crawl.degraded"  # completed, extracting worse than before (payload: the report)
CANCEL_REQUESTED = "crawl.cancel_requested"
# ids of the bids a batch created or changed ({"new": [...], "changed": [...]}); a complete
# crawl's end adds the bids it marked removed ({"removed": [...]}: each has a revision too)
ITEMS = "crawl.items"
PAGE_ERROR = "page.error"
URL_REFUSED = "url.refused"
FINAL_TYPES = frozenset({SUCCEEDED, FAILED, CANCELLED, DEGRADED})

MESSAGE_TYPE = "crawl.event"  # the consumers' handler: crawl_event


def event_append(
    *, crawl_id: int, workspace_id: int, type: str, payload: dict | None = None
) -> CrawlEvent:
    """Append one event to a crawl's log; it is published when the transaction commits."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crawls_crawl SET event_seq = event_seq + 1 WHERE id = %s "
                "RETURNING event_seq",
                [crawl_id],
            )
            (sequence,) = cursor.fetchone()
        event = CrawlEvent.objects.create(
            workspace_id=workspace_id,
            crawl_id=crawl_id,
            sequence=sequence,
            type=type,
            payload=payload or {},
        )
        transaction.on_commit(functools.partial(_after_commit, event))
    return event


def event_message(event: CrawlEvent) -> dict:
    """The wire form of an event (channel layer, WebSocket, SSE)."""
    return {
        "type": MESSAGE_TYPE,
        "crawl": event.crawl_id,
        "workspace": event.workspace_id,
        "seq": event.sequence,
        "event": event.type,
        "payload": event.payload,
        "at": event.created_at.isoformat(),
    }


def _after_commit(event: CrawlEvent) -> None:
    realtime.publish(
        [realtime.crawl_group(event.crawl_id), realtime.workspace_group(event.workspace_id)],
        event_message(event),
    )
    # Every subscriber takes what it has not taken of the crawl's log, this event included;
    # what fails here stays behind its position for the next delivery or beat's catch-up.
    try:
        subscribers.subscribers_deliver(event.crawl_id)
    except Exception:  # never into the committer
        logger.exception("delivery of %s to the subscribers failed", event)
