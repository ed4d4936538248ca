"""At-least-once delivery of the crawl event log to its subscribers (CRAWL_EVENT_SUBSCRIBERS).

Each subscriber keeps a position per crawl (SubscriberCursor: the last sequence it took). A
delivery gives it the events after its position, in sequence order, one transaction per event:
lock the cursor row (FOR UPDATE SKIP LOCKED: a row another process holds is left to it), call
the subscriber, advance the position, commit. So the subscriber's own database work commits
with its position (a rollback undoes both; its on_commit side effects follow the commit), while
what lives outside the database (a Redis cache bump) may happen again. A subscriber that raises
keeps its position and gets the same event again later: subscribers must be idempotent.
The event's own transaction calls subscribers_deliver after commit (events._after_commit); beat's
catch-up (subscribers_catch_up) redelivers whatever a dead worker or a failure left behind.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from crawls.models import Crawl, CrawlEvent, SubscriberCursor

logger = logging.getLogger(__name__)

BATCH = 500  # events read at a time

Subscriber = Callable[[CrawlEvent], object]


class _Outcome(enum.Enum):
    TAKEN = "taken"
    HELD = "held"  # another process holds the cursor: the work is its own
    MOVED = "moved"  # another process took events meanwhile: read again from its position
    FAILED = "failed"


@functools.cache
def subscriber_load(path: str) -> Subscriber:
    """The subscriber function named by a dotted path."""
    subscriber: Subscriber = import_string(path)
    return subscriber


def subscribers_deliver(crawl_id: int, *, paths: Iterable[str] | None = None) -> dict[str, int]:
    """Give each subscriber (all of settings.CRAWL_EVENT_SUBSCRIBERS, or `paths`) the crawl's
    events it has not taken, in order; events taken per subscriber. Never raises: a failure is
    logged and the events stay for the next delivery."""
    taken = {}
    for path in settings.CRAWL_EVENT_SUBSCRIBERS if paths is None else paths:
        try:
            taken[path] = _deliver(path, crawl_id)
        except Exception:  # the cursor itself (the database went away): the catch-up retries
            logger.exception("delivery of crawl %s to %s failed", crawl_id, path)
            taken[path] = 0
    return taken


def _deliver(path: str, crawl_id: int) -> int:
    subscriber = subscriber_load(path)
    position = _position(path, crawl_id)
    taken = 0
    while True:
        pending = list(
            CrawlEvent.objects.filter(crawl_id=crawl_id, sequence__gt=position).order_by(
                "sequence"
            )[:BATCH]
        )
        if not pending:
            return taken
        for event in pending:
            outcome, position = _take(path, subscriber, event, expected=position)
            if outcome is _Outcome.TAKEN:
                taken += 1
            elif outcome is _Outcome.MOVED:
                break
            else:
                return taken


def _position(path: str, crawl_id: int) -> int:
    """The subscriber's position in the crawl, its cursor made at 0 when it has none yet."""
    cursors = SubscriberCursor.objects.filter(subscriber=path, crawl_id=crawl_id)
    position = cursors.values_list("position", flat=True).first()
    if position is None:
        SubscriberCursor.objects.bulk_create(
            [SubscriberCursor(subscriber=path, crawl_id=crawl_id)], ignore_conflicts=True
        )
        position = cursors.values_list("position", flat=True).first() or 0
    return position


def _take(
    path: str, subscriber: Subscriber, event: CrawlEvent, *, expected: int
) -> tuple[_Outcome, int]:
    """One event to one subscriber, in one transaction with its position; (outcome, position)."""
    try:
        with transaction.atomic():
            locked = (
                SubscriberCursor.objects.select_for_update(skip_locked=True)
                .filter(subscriber=path, crawl_id=event.crawl_id)
                .values_list("position", flat=True)
                .first()
            )
            if locked is None:
                return _Outcome.HELD, expected
            if locked != expected:
                return _Outcome.MOVED, locked
            subscriber(event)
            SubscriberCursor.objects.filter(subscriber=path, crawl_id=event.crawl_id).update(
                position=event.sequence, updated_at=timezone.now()
            )
    except Exception:
        # Order is kept: this subscriber stops here for this crawl; the next delivery retries.
        logger.exception("crawl event subscriber %s failed on %s", path, event)
        return _Outcome.FAILED, expected
    return _Outcome.TAKEN, event.sequence


# --- Catch-up -------------------------------------------------------------------------------

# Crawls active (the crawl_active index) or finished since the window's start (crawl_finished),
# each with every subscriber whose position is behind the crawl's last sequence.
_BEHIND = f"""
SELECT c.id, s.path
FROM crawls_crawl c
CROSS JOIN unnest(%(paths)s::text[]) AS s(path)
LEFT JOIN {SubscriberCursor._meta.db_table} k ON k.crawl_id = c.id AND k.subscriber = s.path
WHERE (c.status IN ('queued', 'running') OR c.finished_at >= %(since)s)
    AND c.event_seq > COALESCE(k.position, 0)
ORDER BY c.id, s.path
"""  # noqa: S608 - our table name


def subscribers_behind(
    *, window_seconds: int | None = None, crawl_id: int | None = None
) -> dict[int, list[str]]:
    """{crawl id: subscriber paths behind its log} among the crawls active or finished within
    the window (SUBSCRIBER_CATCH_UP_WINDOW_SECONDS), or of one crawl whatever its age."""
    paths = list(settings.CRAWL_EVENT_SUBSCRIBERS)
    if crawl_id is not None:
        crawl = Crawl.objects.filter(pk=crawl_id).values_list("event_seq", flat=True).first()
        if crawl is None:
            return {}
        positions = dict(
            SubscriberCursor.objects.filter(crawl_id=crawl_id, subscriber__in=paths).values_list(
                "subscriber", "position"
            )
        )
        late = [path for path in paths if positions.get(path, 0) < crawl]
        return {crawl_id: late} if late else {}
    if window_seconds is None:
        window_seconds = settings.SUBSCRIBER_CATCH_UP_WINDOW_SECONDS
    since = timezone.now() - dt.timedelta(seconds=window_seconds)
    behind: dict[int, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_BEHIND, {"paths": paths, "since": since})
        for crawl, path in cursor.fetchall():
            behind.setdefault(crawl, []).append(path)
    return behind


def subscribers_catch_up(
    *, window_seconds: int | None = None, crawl_id: int | None = None
) -> dict[int, dict[str, int]]:
    """Deliver to every subscriber behind (subscribers_behind); events taken per crawl and
    subscriber."""
    return {
        crawl: subscribers_deliver(crawl, paths=paths)
        for crawl, paths in subscribers_behind(
            window_seconds=window_seconds, crawl_id=crawl_id
        ).items()
    }
