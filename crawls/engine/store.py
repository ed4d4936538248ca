"""Batched writes of crawled items: each bid is new, changed or unchanged (by content hash).

One call per batch, a handful of statements whatever the batch size: lock the batch's existing
bids, insert new and rewrite changed ones with one INSERT … ON CONFLICT DO UPDATE, touch the
unchanged ones with one UPDATE, and record field-level revisions of the changed ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from crawls.engine.rules import BID_FIELDS
from crawls.models import Bid, BidRevision

TEXT_FIELDS = ("title", "department", "reference")
UPSERT_FIELDS = [
    *BID_FIELDS,
    "extra",
    "content_hash",
    "etag",
    "last_modified",
    "url",
    "last_seen_at",
    "changed_at",
    "last_crawl",
]


@dataclass(slots=True)
class Item:
    """What one item page yielded."""

    url: str
    url_hash: bytes
    fields: Mapping[str, object]  # typed values of the rules' fields, BID_FIELDS and extras
    content_hash: str
    etag: str = ""
    last_modified: str = ""


@dataclass(slots=True)
class Stored:
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: int = 0


def jsonable(value: object) -> object:
    """JSON form of a field value; datetimes in UTC so that old and new values compare."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 1234500000.00 and 1234500000 alike
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _columns(fields: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """Split typed fields into Bid columns and the JSON `extra`."""
    columns = {name: fields.get(name) for name in BID_FIELDS}
    for name in TEXT_FIELDS:
        columns[name] = columns[name] or ""
    extra = {k: jsonable(v) for k, v in fields.items() if k not in BID_FIELDS}
    return columns, extra


def bids_store(
    *,
    crawl_id: int,
    source_id: int,
    workspace_id: int,
    items: Sequence[Item],
    not_modified: Sequence[bytes] = (),
    now: dt.datetime,
) -> Stored:
    """Upsert one batch of items of a source; `not_modified` are URLs that answered 304."""
    stored = Stored()
    batch = {item.url_hash: item for item in items}  # the same bid twice in a batch: last wins
    if batch:
        existing = {
            bytes(bid.url_hash): bid
            for bid in Bid.objects.select_for_update()
            .filter(source_id=source_id, url_hash__in=list(batch))
            .only("id", "url_hash", "content_hash", "extra", *BID_FIELDS)
        }
    else:
        existing = {}
    rows: list[Bid] = []
    revisions: list[tuple[bytes, dict]] = []
    touched: list[Item] = []
    for url_hash, item in batch.items():
        old = existing.get(url_hash)
        if old is not None and old.content_hash == item.content_hash:
            touched.append(item)
            continue
        columns, extra = _columns(item.fields)
        if old is not None:
            changes = {
                name: [jsonable(getattr(old, name)), jsonable(value)]
                for name, value in columns.items()
                if getattr(old, name) != value
            }
            changes.update(
                {
                    f"extra.{key}": [old.extra.get(key), extra.get(key)]
                    for key in sorted(set(old.extra) | set(extra))
                    if old.extra.get(key) != extra.get(key)
                }
            )
            revisions.append((url_hash, changes))
        rows.append(
            Bid(
                workspace_id=workspace_id,
                source_id=source_id,
                url=item.url,
                url_hash=url_hash,
                extra=extra,
                content_hash=item.content_hash,
                etag=item.etag[:200],
                last_modified=item.last_modified[:64],
                first_seen_at=now,
                last_seen_at=now,
                changed_at=now,
                first_crawl_id=crawl_id,
                last_crawl_id=crawl_id,
                **columns,
            )
        )
    if rows:
        Bid.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["source", "url_hash"],
            update_fields=UPSERT_FIELDS,
        )
        ids = {bytes(row.url_hash): row.pk for row in rows}
        for row in rows:
            (stored.changed if bytes(row.url_hash) in existing else stored.new).append(row.pk)
        BidRevision.objects.bulk_create(
            BidRevision(
                workspace_id=workspace_id,
                bid_id=ids[url_hash],
                crawl_id=crawl_id,
                changes=changes,
                changed_at=now,
            )
            for url_hash, changes in revisions
        )
    stored.unchanged = _touch(
        crawl_id=crawl_id,
        source_id=source_id,
        items=touched,
        not_modified=[h for h in not_modified if h not in batch],
        now=now,
    )
    return stored


def _touch(
    *, crawl_id: int, source_id: int, items: list[Item], not_modified: list[bytes], now
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


def validators_for(*, source_id: int, url_hashes: Sequence[bytes]) -> dict[bytes, tuple[str, str]]:
    """ETag and Last-Modified of known bids, for conditional GETs on re-crawls."""
    if not url_hashes:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT url_hash, etag, last_modified FROM crawls_bid "
            "WHERE source_id = %s AND url_hash = ANY(%s) AND (etag <> '' OR last_modified <> '')",
            [source_id, list(url_hashes)],
        )
        return {bytes(h): (etag, modified) for h, etag, modified in cursor.fetchall()}
