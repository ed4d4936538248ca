"""Writes of the analytics read model (DepartmentDay): set-based, one statement per call.

Every write recomputes whole keys (workspace, source, department, day) from crawls_bid, so
applying a batch twice, late or out of order gives the same rows as a rebuild. Writers of one
workspace take a transaction-level advisory lock first: the recompute then reads a snapshot
taken after the previous writer committed (READ COMMITTED), so no stale total wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from analytics import cache

# pg_advisory_xact_lock(classid, objid): the first key is ours, the second the workspace.
LOCK_CLASS = 0x414E  # "AN"

# The (source, department, day) keys of the CTE `bids`: each bid's current key, and every
# (department, day) the CTE `revs` (revisions, old or new values) names for it.
_KEYS_OF_BIDS = """
    depts AS (
        SELECT b.id, b.department FROM bids b
        UNION
        SELECT r.bid_id, r.changes -> 'department' ->> j FROM revs r, generate_series(0, 1) j
        WHERE r.changes ? 'department'
    ),
    days AS (
        SELECT b.id, b.post_date AS day FROM bids b
        UNION
        SELECT r.bid_id, (r.changes -> 'post_date' ->> j)::date FROM revs r,
            generate_series(0, 1) j
        WHERE r.changes ? 'post_date'
    ),
    keys AS (
        SELECT DISTINCT b.source_id, d.department, t.day
        FROM bids b JOIN depts d ON d.id = b.id JOIN days t ON t.id = b.id
        WHERE d.department IS NOT NULL AND t.day IS NOT NULL
    )"""

# The keys of a crawl.items batch: each bid's current key, and for changed bids every
# (department, day) its revisions of this crawl name (old or new), so a bid that moved leaves
# no count behind. Extra keys cost a recompute that changes nothing.
_BATCH_KEYS = f"""
    revs AS (
        SELECT r.bid_id, r.changes FROM crawls_bidrevision r
        WHERE r.bid_id = ANY(%(changed)s) AND r.crawl_id = %(crawl)s
    ),
    bids AS (
        SELECT b.id, b.source_id, b.department, b.post_date FROM crawls_bid b
        WHERE b.id = ANY(%(ids)s) AND b.workspace_id = %(workspace)s
    ),{_KEYS_OF_BIDS}"""  # noqa: S608 - constant SQL

# Recompute `keys` from the bids: upsert the non-empty ones, delete those that became empty.
_RECOMPUTE = """
    fresh AS (
        SELECT k.source_id, k.department, k.day, count(*) AS bid_count,
            sum(b.amount) FILTER (WHERE b.currency IN ('', %(currency)s)) AS total_amount,
            max(b.views) AS max_views
        FROM keys k
        JOIN crawls_bid b ON b.workspace_id = %(workspace)s AND b.department = k.department
            AND b.post_date = k.day AND b.source_id = k.source_id
        GROUP BY k.source_id, k.department, k.day
    ),
    upserted AS (
        INSERT INTO analytics_departmentday (
            workspace_id, source_id, department, day, bid_count, total_amount, max_views)
        SELECT %(workspace)s, source_id, department, day, bid_count, total_amount, max_views
        FROM fresh
        ON CONFLICT (workspace_id, source_id, department, day) DO UPDATE SET
            bid_count = EXCLUDED.bid_count, total_amount = EXCLUDED.total_amount,
            max_views = EXCLUDED.max_views
        RETURNING 1
    ),
    deleted AS (
        DELETE FROM analytics_departmentday s USING keys k
        WHERE s.workspace_id = %(workspace)s AND s.source_id = k.source_id
            AND s.department = k.department AND s.day = k.day
            AND NOT EXISTS (
                SELECT 1 FROM fresh f WHERE f.source_id = k.source_id
                    AND f.department = k.department AND f.day = k.day)
        RETURNING 1
    )
SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM upserted),
    (SELECT count(*) FROM deleted)
"""

_REBUILD_DELETE = "DELETE FROM analytics_departmentday WHERE workspace_id = ANY(%(workspaces)s)"
_REBUILD_INSERT = """
INSERT INTO analytics_departmentday (
    workspace_id, source_id, department, day, bid_count, total_amount, max_views)
SELECT workspace_id, source_id, department, post_date, count(*),
    sum(amount) FILTER (WHERE currency IN ('', %(currency)s)), max(views)
FROM crawls_bid
WHERE workspace_id = ANY(%(workspaces)s) AND post_date IS NOT NULL
GROUP BY workspace_id, source_id, department, post_date
"""


def _lock(cursor: CursorWrapper, workspace_id: int) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, workspace_id])


def _lock_by_index(cursor: CursorWrapper, workspace_id: int) -> None:
    """The workspace's lock, and keys recomputed through the bid indexes whatever the
    statistics say (both for this transaction, in one round trip).

    Right after bulk inserts the statistics still describe a small table: the planner then
    joined each key to a sequential scan of crawls_bid (make bench-crawl: 87 s of PostgreSQL
    CPU for 10,000 bids in the round that met stale statistics, 3 s in the others).
    """
    cursor.execute(
        "SELECT set_config('enable_seqscan', 'off', true), pg_advisory_xact_lock(%s, %s)",
        [LOCK_CLASS, workspace_id],
    )


def batch_statement(
    *, workspace_id: int, crawl_id: int, new: Sequence[int], changed: Sequence[int]
) -> tuple[str, dict[str, Any]]:
    """The one statement that applies a crawl.items batch, and its parameters."""
    ids = [*new, *changed]
    params = {
        "workspace": workspace_id,
        "crawl": crawl_id,
        "ids": ids,
        "changed": list(changed),
        "currency": settings.ANALYTICS_CURRENCY,
    }
    return f"WITH {_BATCH_KEYS}, {_RECOMPUTE}", params


def summary_apply_items(
    *, workspace_id: int, crawl_id: int, new: Sequence[int], changed: Sequence[int]
) -> int:
    """Recompute the keys of one crawl.items batch (new and changed bid ids); keys recomputed."""
    if not [*new, *changed]:
        return 0
    sql, params = batch_statement(
        workspace_id=workspace_id, crawl_id=crawl_id, new=new, changed=changed
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_by_index(cursor, workspace_id)
        cursor.execute(sql, params)
        keys, _, _ = cursor.fetchone()
    cache.generation_bump(workspace_id=workspace_id)
    return int(keys)


# The keys a crawl touched, set-based: its bids (stored, created or changed by it: first or last
# crawl is it, or a revision of it names them) with their current key, and every (department,
# day) the crawl's revisions name. One statement over the crawl, through the bid indexes.
_CRAWL_KEYS = f"""
    revs AS (
        SELECT r.bid_id, r.changes FROM crawls_bidrevision r WHERE r.crawl_id = %(crawl)s
    ),
    bids AS MATERIALIZED (
        SELECT b.id, b.source_id, b.department, b.post_date FROM crawls_bid b
        WHERE b.workspace_id = %(workspace)s AND (
            b.last_crawl_id = %(crawl)s OR b.first_crawl_id = %(crawl)s
            OR b.id IN (SELECT bid_id FROM revs))
    ),{_KEYS_OF_BIDS}"""  # noqa: S608 - constant SQL


def summary_reconcile_crawl(*, workspace_id: int, crawl_id: int) -> int:
    """Recompute every key a crawl touched (its final event: repairs a missed batch event, and
    is how an import's bids are counted, once): its bids' current keys and its revisions' old
    ones, in one set-based statement (the keys first, then each key once). Chunks of 500 bids
    through the batch statement took 14 s for a 20,000-row import (each chunk recomputed most
    of the source's keys again); this takes well under a second."""
    params = {
        "workspace": workspace_id,
        "crawl": crawl_id,
        "currency": settings.ANALYTICS_CURRENCY,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_by_index(cursor, workspace_id)
        cursor.execute(f"WITH {_CRAWL_KEYS}, {_RECOMPUTE}", params)
        keys, _, _ = cursor.fetchone()
    cache.generation_bump(workspace_id=workspace_id)
    return int(keys)


def summary_rebuild(*, workspace_ids: Sequence[int]) -> int:
    """Replace the read model of these workspaces with a fresh GROUP BY of their bids; rows."""
    params = {"workspaces": list(workspace_ids), "currency": settings.ANALYTICS_CURRENCY}
    with transaction.atomic(), connection.cursor() as cursor:
        for workspace_id in sorted(workspace_ids):
            _lock(cursor, workspace_id)
        cursor.execute(_REBUILD_DELETE, params)
        cursor.execute(_REBUILD_INSERT, params)
        rows: int = cursor.rowcount
    for workspace_id in workspace_ids:
        cache.generation_bump(workspace_id=workspace_id)
    return rows
