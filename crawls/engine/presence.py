"""Which bids a source still shows (docs/crawling.md, "Removed notices"): after a complete crawl
(succeeded, not capped, not degraded) a bid not seen for settings.BID_REMOVED_AFTER_CRAWLS
complete crawls in a row is marked removed, with a revision; a removed bid seen again is live
again (`bids_seen`, called by crawls.engine.store), with a revision.

Seam (issue 13): `crawl_removals` is called by lifecycle.crawl_finish, inside its transaction,
for a complete crawl, before its final event.

Statements are set-based (a source may have a million bids): one per batch, two per crawl.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from django.conf import settings
from django.db import connection
from django.utils import timezone

from crawls import events
from crawls.models import Crawl, FrontierUrl

REMOVED = {"removed": [False, True]}
BACK = {"removed": [True, False]}
EVENT_CHUNK = 1000  # ids per crawl.items event


def crawl_complete(crawl: Crawl) -> bool:
    """Whether the crawl listed the whole board: no listing page of it failed (the items of a
    failed one were not listed). Capped, cancelled and degraded crawls are ruled out by the
    caller (lifecycle.crawl_finish)."""
    failed = FrontierUrl.objects.filter(
        crawl_id=crawl.pk, kind=FrontierUrl.Kind.LIST, state=FrontierUrl.State.FAILED
    )
    return not failed.exists()


def crawl_removals(crawl: Crawl) -> list[int]:
    """Count a miss for every live bid of the crawl's source it did not see; mark removed those
    missed often enough (revision, crawl.items event); the ids marked removed."""
    if not crawl_complete(crawl):
        return []
    now = timezone.now()
    with connection.cursor() as cursor:
        # Seen: stored by the crawl (new, changed, unchanged or 304: last_crawl is it) or linked
        # by it (its item page is in the crawl's frontier, fetched or failed).
        cursor.execute(
            """
            WITH missed AS (
                UPDATE crawls_bid b
                SET missed_crawls = b.missed_crawls + 1,
                    removed_at = CASE WHEN b.missed_crawls + 1 >= %(k)s THEN %(now)s END,
                    changed_at = CASE WHEN b.missed_crawls + 1 >= %(k)s THEN %(now)s
                                      ELSE b.changed_at END
                WHERE b.source_id = %(source)s AND b.removed_at IS NULL
                  AND b.last_crawl_id IS DISTINCT FROM %(crawl)s
                  AND NOT EXISTS (
                      SELECT 1 FROM crawls_frontierurl f
                      WHERE f.crawl_id = %(crawl)s AND f.url_hash = b.url_hash)
                RETURNING b.id, b.workspace_id, b.removed_at
            ), revisions AS (
                INSERT INTO crawls_bidrevision (workspace_id, bid_id, crawl_id, changes, changed_at)
                SELECT workspace_id, id, %(crawl)s, %(changes)s::jsonb, %(now)s
                FROM missed WHERE removed_at IS NOT NULL
            )
            SELECT id FROM missed WHERE removed_at IS NOT NULL ORDER BY id
            """,
            {
                "k": settings.BID_REMOVED_AFTER_CRAWLS,
                "now": now,
                "source": crawl.source_id,
                "crawl": crawl.pk,
                "changes": json.dumps(REMOVED),
            },
        )
        removed = [row[0] for row in cursor.fetchall()]
        # A bid whose item page failed was still linked: seen, its misses start again.
        cursor.execute(
            """
            UPDATE crawls_bid b SET missed_crawls = 0
            FROM crawls_frontierurl f
            WHERE f.crawl_id = %s AND f.url_hash = b.url_hash AND b.source_id = %s
              AND b.missed_crawls > 0 AND b.removed_at IS NULL
            """,
            [crawl.pk, crawl.source_id],
        )
    for start in range(0, len(removed), EVENT_CHUNK):
        events.event_append(
            crawl_id=crawl.pk,
            workspace_id=crawl.workspace_id,
            type=events.ITEMS,
            payload={"new": [], "changed": [], "removed": removed[start : start + EVENT_CHUNK]},
        )
    return removed


def bids_seen(
    *, crawl_id: int, source_id: int, url_hashes: Sequence[bytes], now: dt.datetime
) -> list[int]:
    """Bids of a batch the crawl saw: their misses start again, and the removed ones are live
    again (a revision each); the ids of those back, in one statement."""
    if not url_hashes:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH live AS (
                UPDATE crawls_bid SET missed_crawls = 0
                WHERE source_id = %(source)s AND url_hash = ANY(%(hashes)s)
                  AND removed_at IS NULL AND missed_crawls > 0
            ), back AS (
                UPDATE crawls_bid SET missed_crawls = 0, removed_at = NULL, changed_at = %(now)s
                WHERE source_id = %(source)s AND url_hash = ANY(%(hashes)s)
                  AND removed_at IS NOT NULL
                RETURNING id, workspace_id
            ), revisions AS (
                INSERT INTO crawls_bidrevision (workspace_id, bid_id, crawl_id, changes, changed_at)
                SELECT workspace_id, id, %(crawl)s, %(changes)s::jsonb, %(now)s FROM back
            )
            SELECT id FROM back ORDER BY id
            """,
            {
                "source": source_id,
                "hashes": list(url_hashes),
                "crawl": crawl_id,
                "changes": json.dumps(BACK),
                "now": now,
            },
        )
        return [row[0] for row in cursor.fetchall()]
