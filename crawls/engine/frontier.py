"""The frontier in PostgreSQL: the URLs a crawl visits, claimed in batches under a lease.

Workers claim with `FOR UPDATE SKIP LOCKED`, so any number of worker processes (on any number of
machines) share one crawl without blocking each other. A lease that expires (its worker died)
makes the URL claimable again, alone in its batch; a URL whose leases keep expiring is given up
after CRAWL_URL_MAX_ATTEMPTS.
Statements are set-based: one per batch, never one per URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from psycopg.types.json import Jsonb

from crawls.engine.request import Request


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    url: str
    url_hash: bytes
    depth: int
    kind: str
    attempts: int
    request: Request


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    url_hash: bytes  # request.request_hash of the request (a plain GET: the URL's hash)
    depth: int
    kind: str
    request: Request | None = None  # None: a plain GET of url


@dataclass(frozen=True, slots=True)
class Outcome:
    id: int
    state: str  # "done" or "failed"
    status: int | None
    error: str


@dataclass(frozen=True, slots=True)
class Pending:
    queued: int  # claimable now (queued, or leased with an expired lease)
    leased: int  # held by a live lease


@dataclass(frozen=True, slots=True)
class Added:
    count: int  # links inserted
    # Links the crawl left out: new ones beyond the room (max_pages), and links refused only
    # for their depth (max_depth) that the crawl does not hold at a lower depth.
    left_out: int


def frontier_add(*, crawl_id: int, workspace_id: int, links: Sequence[Link], room: int) -> int:
    """Insert the links the crawl has not seen, at most `room` of them; return how many."""
    added = frontier_extend(crawl_id=crawl_id, workspace_id=workspace_id, links=links, room=room)
    return added.count


def frontier_extend(
    *,
    crawl_id: int,
    workspace_id: int,
    links: Sequence[Link],
    room: int,
    too_deep: Sequence[bytes] = (),
) -> Added:
    """Insert the links the crawl has not seen, at most `room` of them; count what was left
    out, `too_deep` (URL hashes the scope refused only for their depth) included."""
    if not links and not too_deep:
        return Added(0, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT url_hash FROM crawls_frontierurl WHERE crawl_id = %s AND url_hash = ANY(%s)",
            [crawl_id, [link.url_hash for link in links] + list(too_deep)],
        )
        known = {bytes(row[0]) for row in cursor.fetchall()}
        unseen: dict[bytes, Link] = {}
        for link in links:
            if link.url_hash not in known:
                unseen.setdefault(link.url_hash, link)
        fresh = dict(list(unseen.items())[: max(room, 0)])
        left_out = len(unseen) - len(fresh)
        left_out += len({h for h in too_deep if h not in known and h not in unseen})
        if not fresh:
            return Added(0, left_out)
        cursor.execute(
            """
            INSERT INTO crawls_frontierurl
                (workspace_id, crawl_id, url, url_hash, depth, kind, request, state,
                 lease_owner, attempts, error)
            SELECT %s, %s, t.url, t.hash, t.depth, t.kind, t.request, 'queued', '', 0, ''
            FROM unnest(%s::text[], %s::bytea[], %s::int[], %s::text[], %s::jsonb[])
                AS t(url, hash, depth, kind, request)
            ON CONFLICT (crawl_id, url_hash) DO NOTHING
            """,
            [
                workspace_id,
                crawl_id,
                [link.url for link in fresh.values()],
                list(fresh),
                [link.depth for link in fresh.values()],
                [link.kind for link in fresh.values()],
                [_request_json(link.request) for link in fresh.values()],
            ],
        )
        return Added(cursor.rowcount, left_out)


def frontier_give_up(*, crawl_id: int, max_attempts: int) -> list[str]:
    """Fail the URLs whose lease expired `max_attempts` times (each time, the page stalled or
    killed its worker); return their URLs so that the crawl can report them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crawls_frontierurl
            SET state = 'failed', lease_owner = '', lease_expires_at = NULL,
                error = 'gave_up: its lease expired ' || attempts || ' times (the page stalled '
                        'or killed its worker)'
            WHERE crawl_id = %s AND state = 'leased' AND lease_expires_at < now()
              AND attempts >= %s
            RETURNING url
            """,
            [crawl_id, max_attempts],
        )
        return [row[0] for row in cursor.fetchall()]


def frontier_claim(*, crawl_id: int, owner: str, limit: int, lease_seconds: int) -> list[Claimed]:
    """Lease up to `limit` claimable URLs of the crawl to `owner`, oldest first.

    A URL whose lease expired (its worker died or stalled with it) is a suspect: it is claimed
    alone, so that a page that kills workers takes only itself down on its next attempts, and
    the URLs that shared its batch are not blamed.
    """
    claim = """
        UPDATE crawls_frontierurl f
        SET state = 'leased', lease_owner = %s,
            lease_expires_at = now() + make_interval(secs => %s), attempts = f.attempts + 1
        WHERE f.id IN (
            SELECT id FROM crawls_frontierurl
            WHERE crawl_id = %s AND {which}
            ORDER BY id
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        )
        RETURNING f.id, f.url, f.url_hash, f.depth, f.kind, f.attempts, f.request
    """
    with connection.cursor() as cursor:
        cursor.execute(
            claim.format(which="state = 'leased' AND lease_expires_at < now()"),
            [owner, lease_seconds, crawl_id, 1],
        )
        rows = cursor.fetchall()
        if not rows:
            cursor.execute(
                claim.format(which="state = 'queued'"), [owner, lease_seconds, crawl_id, limit]
            )
            rows = cursor.fetchall()
    rows.sort(key=lambda row: row[0])
    return [
        Claimed(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], Request.from_json(r[1], r[6]))
        for r in rows
    ]


def _request_json(request: Request | None) -> Jsonb | None:
    data = request.to_json() if request is not None else None
    return Jsonb(data) if data is not None else None


def frontier_finish(*, owner: str, outcomes: Sequence[Outcome]) -> int:
    """Record what happened to claimed URLs; URLs whose lease `owner` lost are left alone."""
    if not outcomes:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crawls_frontierurl f
            SET state = v.state, last_status = v.status, error = v.error, fetched_at = now(),
                lease_owner = '', lease_expires_at = NULL
            FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[])
                AS v(id, state, status, error)
            WHERE f.id = v.id AND f.lease_owner = %s AND f.state = 'leased'
            """,
            [
                [o.id for o in outcomes],
                [o.state for o in outcomes],
                [o.status for o in outcomes],
                [o.error[:300] for o in outcomes],
                owner,
            ],
        )
        return cursor.rowcount


def frontier_release(*, crawl_id: int, owner: str | None) -> int:
    """Give back the URLs `owner` still holds (on cancel or shutdown); every owner's when None."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crawls_frontierurl
            SET state = 'queued', lease_owner = '', lease_expires_at = NULL,
                attempts = greatest(attempts - 1, 0)
            WHERE crawl_id = %s AND state = 'leased' AND (%s::text IS NULL OR lease_owner = %s)
            """,
            [crawl_id, owner, owner],
        )
        return cursor.rowcount


def frontier_pending(*, crawl_id: int) -> Pending:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE state = 'queued'
                                     OR (state = 'leased' AND lease_expires_at < now())),
                   count(*) FILTER (WHERE state = 'leased' AND lease_expires_at >= now())
            FROM crawls_frontierurl
            WHERE crawl_id = %s AND state IN ('queued', 'leased')
            """,
            [crawl_id],
        )
        queued, leased = cursor.fetchone()
    return Pending(queued=queued, leased=leased)


def frontier_totals(*, crawl_id: int) -> dict[str, int]:
    """URL count by state (the crawl's final figures)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, count(*) FROM crawls_frontierurl WHERE crawl_id = %s GROUP BY state",
            [crawl_id],
        )
        return dict(cursor.fetchall())


RETRYABLE_CLASSES = ("http_5xx", "timeout", "connection")


def frontier_requeue_failed(*, crawl_id: int) -> int:
    """Queue again the URLs that failed for passing reasons (a crawl being retried)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crawls_frontierurl SET state = 'queued', error = '', attempts = 0
            WHERE crawl_id = %s AND state = 'failed' AND split_part(error, ':', 1) = ANY(%s)
            """,
            [crawl_id, list(RETRYABLE_CLASSES)],
        )
        return cursor.rowcount
