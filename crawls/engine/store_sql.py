"""The store's bulk statements (crawls.engine.store decides what each bid of a batch needs): the
batch's stored bids looked up and locked, new and changed bids written with one INSERT … SELECT
FROM unnest(…) ON CONFLICT, the unchanged ones touched with one UPDATE (docs/performance.md).
Item, what one item page yielded, lives here (the statements take it); crawls.engine.store
re-exports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from crawls.engine.rules import BID_FIELDS
from project import dbscope


@dataclass(slots=True)
class Item:
    """What one item page yielded."""

    url: str
    url_hash: bytes
    fields: Mapping[str, object]  # typed values of the rules' fields, BID_FIELDS and extras
    content_hash: str
    etag: str = ""
    last_modified: str = ""
    version: str = ""  # the publisher's version; "" when the source has none
    # Only the fields the publisher gave this time (an OCDS release): the bid's other fields
    # keep their stored values.
    partial: bool = False
    # _columns(fields), computed ahead by a caller that has the time (an import's reading
    # thread: item_prepare); None: the store computes it.
    prepared: tuple[dict[str, object], dict[str, object]] | None = None


# The order of the bid columns in upsert's statement.
BID_FIELDS_ORDER = (
    "title", "department", "views", "post_date", "amount", "deadline", "reference",
    "currency", "status", "procurement_method", "classifications",
)  # fmt: skip
assert set(BID_FIELDS_ORDER) == set(BID_FIELDS)  # noqa: S101 - a wiring check at import


@dataclass(frozen=True, slots=True)
class Head:
    """What decides whether a stored bid changes, and whether seeing it writes its presence."""

    id: int
    content_hash: str
    version: str
    missed: bool  # misses counted, or marked removed


def heads_lock(source_id: int, url_hashes: list[bytes]) -> dict[bytes, Head]:
    """The stored bids of these URL hashes, locked (FOR UPDATE) for the batch's transaction.

    Server-side binding (a plain psycopg cursor on Django's connection, same transaction): the
    hashes go as one binary bytea[] parameter, not quoted into the SQL one by one in Python.
    (A LATERAL lookup per hash was tried: on statistics that say a new source has no bids, the
    planner took the source_id index for each hash, 50 s a 100,000-row import.)"""
    with _cursor() as cursor:
        cursor.execute(
            "SELECT url_hash, id, content_hash, version, "
            "missed_crawls > 0 OR removed_at IS NOT NULL FROM crawls_bid "
            "WHERE source_id = %s AND url_hash = ANY(%b) FOR UPDATE",
            [source_id, url_hashes],
            binary=True,
        )
        return {bytes(row[0]): Head(*row[1:]) for row in cursor.fetchall()}


def _cursor() -> psycopg.Cursor:
    """A server-side binding cursor on Django's connection (its transaction): large array
    parameters are sent as parameters instead of being quoted into the statement in Python
    (Django's psycopg cursors are client-side binding)."""
    dbscope.sync(connection)  # no execute wrapper sets the scope of a plain psycopg cursor
    return psycopg.Cursor(connection.connection)


_INSERT = """
            INSERT INTO crawls_bid (
                workspace_id, source_id, first_seen_at, last_seen_at, changed_at,
                first_crawl_id, last_crawl_id, url, url_hash, title, department, views,
                post_date, amount, deadline, reference, currency, status, procurement_method,
                classifications, extra, content_hash, etag, last_modified, version)
            SELECT %s, %s, %s, %s, %s, %s, %s, t.url, t.hash, t.title, t.department, t.views,
                t.post_date, t.amount, t.deadline, t.reference, t.currency, t.status,
                t.method, ARRAY(SELECT jsonb_array_elements_text(t.codes))::varchar(120)[],
                t.extra, t.content_hash, t.etag, t.last_modified, t.version
            FROM unnest(
                %b::text[], %b::bytea[], %b::text[], %b::text[], %b::int[], %b::date[],
                %b::numeric[], %b::timestamptz[], %b::text[], %b::text[], %b::text[],
                %b::text[], %b::jsonb[], %b::jsonb[], %b::text[], %b::text[], %b::text[],
                %b::text[])
                AS t(url, hash, title, department, views, post_date, amount, deadline,
                     reference, currency, status, method, codes, extra, content_hash, etag,
                     last_modified, version)
            """
_ON_CONFLICT_NOTHING = "ON CONFLICT (source_id, url_hash) DO NOTHING"
_ON_CONFLICT_UPDATE = """
            ON CONFLICT (source_id, url_hash) DO UPDATE SET
                url = EXCLUDED.url, title = EXCLUDED.title, department = EXCLUDED.department,
                views = EXCLUDED.views, post_date = EXCLUDED.post_date,
                amount = EXCLUDED.amount, deadline = EXCLUDED.deadline,
                reference = EXCLUDED.reference, currency = EXCLUDED.currency,
                status = EXCLUDED.status, procurement_method = EXCLUDED.procurement_method,
                classifications = EXCLUDED.classifications, version = EXCLUDED.version,
                extra = EXCLUDED.extra,
                content_hash = EXCLUDED.content_hash, etag = EXCLUDED.etag,
                last_modified = EXCLUDED.last_modified, last_seen_at = EXCLUDED.last_seen_at,
                changed_at = EXCLUDED.changed_at, last_crawl_id = EXCLUDED.last_crawl_id
"""


_RETURNING = "RETURNING url_hash, id"
_UPSERT_SQL = {
    True: "\n".join((_INSERT, _ON_CONFLICT_UPDATE, _RETURNING)),
    False: "\n".join((_INSERT, _ON_CONFLICT_NOTHING, _RETURNING)),
}


def upsert(
    *,
    crawl_id: int,
    source_id: int,
    workspace_id: int,
    rows: Sequence[tuple[bytes, Item, Mapping[str, object], Mapping[str, object]]],
    now: dt.datetime,
    update: bool = True,
) -> dict[bytes, int]:
    """Insert new bids and rewrite changed ones in one statement; ids by URL hash (update=False:
    insert the new ones only; the others are left as they are and not returned)."""
    columns = [c for _, _, c, _ in rows]
    with _cursor() as cursor:
        cursor.execute(
            _UPSERT_SQL[update],
            [
                workspace_id, source_id, now, now, now, crawl_id, crawl_id,
                [item.url for _, item, _, _ in rows],
                [url_hash for url_hash, *_ in rows],
                *([c[name] for c in columns] for name in BID_FIELDS_ORDER[:-1]),
                [Jsonb(c["classifications"]) for c in columns],
                [Jsonb(extra) for *_, extra in rows],
                [item.content_hash for _, item, _, _ in rows],
                [item.etag[:200] for _, item, _, _ in rows],
                [item.last_modified[:64] for _, item, _, _ in rows],
                [item.version[:100] for _, item, _, _ in rows],
            ],
            binary=True,
        )  # fmt: skip
        return {bytes(url_hash): pk for url_hash, pk in cursor.fetchall()}


def touch(
    *,
    crawl_id: int,
    source_id: int,
    items: list[Item],
    not_modified: list[bytes],
    now: dt.datetime,
) -> int:
    """Mark unchanged bids as seen by this crawl (keeping their validators current)."""
    count = 0
    with connection.cursor() as cursor:
        if items:
            cursor.execute(
                """
                UPDATE crawls_bid b
                SET last_seen_at = %s, last_crawl_id = %s, etag = v.etag,
                    last_modified = v.last_modified
                FROM unnest(%s::bytea[], %s::text[], %s::text[]) AS v(hash, etag, last_modified)
                WHERE b.source_id = %s AND b.url_hash = v.hash
                """,
                [
                    now,
                    crawl_id,
                    [i.url_hash for i in items],
                    [i.etag[:200] for i in items],
                    [i.last_modified[:64] for i in items],
                    source_id,
                ],
            )
            count += cursor.rowcount
        if not_modified:
            cursor.execute(
                "UPDATE crawls_bid SET last_seen_at = %s, last_crawl_id = %s "
                "WHERE source_id = %s AND url_hash = ANY(%s)",
                [now, crawl_id, source_id, list(not_modified)],
            )
            count += cursor.rowcount
    return count
