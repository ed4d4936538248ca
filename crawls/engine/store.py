"""Batched writes of crawled items: each bid is new, changed or unchanged (by content hash).

One call per batch, a handful of statements whatever the batch size: lock the batch's existing
bids, insert new and rewrite changed ones with one INSERT … SELECT FROM unnest(…) ON CONFLICT DO
UPDATE (about 5 times less CPU than bulk_create and its thousands of placeholders), touch the
unchanged ones with one UPDATE, and record field-level revisions of the changed ones. A bid
seen starts its misses again and, when it was removed, is live again (crawls.engine.presence).

A batch may hold several versions of one bid (an OCDS feed's releases of one ocid): they are
applied in turn, oldest first, each a revision. A version older than the stored one (Bid.version)
is not applied. The procurement columns are stored normalised (crawls.engine.normalize).
The statements themselves (lookup and lock, upsert, touch): crawls.engine.store_sql.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from crawls.engine import normalize, presence, store_sql, urls
from crawls.engine.rules import BID_FIELDS
from crawls.engine.store_sql import Item as Item  # what the store takes (its statements too)
from crawls.models import Bid, BidRevision

TEXT_FIELDS = ("title", "department", "reference", "procurement_method")
# Longer texts are cut to their column's length rather than failing the batch.
_TEXT_LENGTHS = {"department": 300, "reference": 200, "procurement_method": 100}


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
        columns[name] = str(columns[name] or "")[: _TEXT_LENGTHS.get(name)]
    columns["currency"] = normalize.currency_code(columns["currency"]) or ""
    columns["status"] = normalize.status_code(columns["status"])
    columns["classifications"] = normalize.classification_codes(columns["classifications"])
    extra = {k: jsonable(v) for k, v in fields.items() if k not in BID_FIELDS}
    return columns, extra


def item_prepare(item: Item) -> Item:
    """The item with its columns computed (what the store would compute while storing it)."""
    item.prepared = _columns(item.fields)
    return item


def bids_store(
    *,
    crawl_id: int,
    source_id: int,
    workspace_id: int,
    items: Sequence[Item],
    not_modified: Sequence[bytes] = (),
    now: dt.datetime,
    touch: bool = True,
    insert_first: bool = False,
) -> Stored:
    """Upsert one batch of items of a source; `not_modified` are URLs that answered 304.

    Several items of one bid are applied in turn (a round each), oldest version first.
    `touch=False` (imports) leaves unchanged bids as they are (counted, not rewritten: their
    last_seen_at / last_crawl stay those of the crawl that last saw them on the board).
    `insert_first=True` (imports) inserts the batch's new bids before looking the others up: a
    file into a new or growing source is mostly new bids."""
    rounds: list[dict[bytes, Item]] = [{}]
    for item in sorted(items, key=lambda i: i.version):  # stable: page order within a version
        for round_ in rounds:
            if item.url_hash not in round_:
                round_[item.url_hash] = item
                break
        else:
            rounds.append({item.url_hash: item})
    stored = Stored()
    missed: set[bytes] = set()  # batch bids with misses counted or marked removed
    for index, batch in enumerate(rounds):
        _store_round(
            crawl_id=crawl_id,
            source_id=source_id,
            workspace_id=workspace_id,
            batch=batch,
            not_modified=not_modified if index == 0 else (),
            now=now,
            stored=stored,
            touch=touch,
            insert_first=insert_first,
            missed=missed,
        )
    # A bid new in this batch and changed by a later round of it is new, once.
    stored.changed = [pk for pk in dict.fromkeys(stored.changed) if pk not in set(stored.new)]
    stored.new = list(dict.fromkeys(stored.new))
    # Seen: misses start again; a removed bid is live again, and changed (its revision says so).
    # Only the bids with misses or removed need it (the others: nothing to write).
    back = presence.bids_seen(
        crawl_id=crawl_id,
        source_id=source_id,
        url_hashes=list(dict.fromkeys([*(h for h in missed if h), *not_modified])),
        now=now,
    ) if missed or not_modified else []  # fmt: skip
    unchanged_back = [pk for pk in back if pk not in set(stored.changed)]
    stored.changed.extend(unchanged_back)
    stored.unchanged -= len(unchanged_back)
    return stored


def _store_round(
    *,
    crawl_id: int,
    source_id: int,
    workspace_id: int,
    batch: dict[bytes, Item],
    not_modified: Sequence[bytes],
    now: dt.datetime,
    stored: Stored,
    touch: bool,
    insert_first: bool,
    missed: set[bytes],
) -> None:
    if insert_first and batch:
        # New bids straight in (ON CONFLICT DO NOTHING: the unique index decides, whatever the
        # statistics say); only the others are looked up, locked and compared.
        inserted = store_sql.upsert(
            crawl_id=crawl_id, source_id=source_id, workspace_id=workspace_id, now=now,
            rows=[(h, i, *(i.prepared or _columns(i.fields))) for h, i in batch.items()],
            update=False,
        )  # fmt: skip
        stored.new.extend(inserted.values())
        batch = {h: i for h, i in batch.items() if h not in inserted}
    heads = store_sql.heads_lock(source_id, list(batch)) if batch else {}
    missed.update(h for h, head in heads.items() if head.missed)
    # The stored fields of the bids this round may change (not the unchanged: most of a re-crawl)
    may_change = [head.id for h, head in heads.items() if not _unchanged(head, batch[h])]
    existing = {
        bytes(bid.url_hash): bid
        for bid in Bid.objects.filter(pk__in=may_change).only(
            "id", "url_hash", "content_hash", "extra", "version", *BID_FIELDS
        )
    } if may_change else {}  # fmt: skip
    rows: list[tuple[bytes, Item, dict, dict]] = []
    revisions: list[tuple[bytes, dict]] = []
    touched: list[Item] = []
    for url_hash, item in batch.items():
        head = heads.get(url_hash)
        if head is not None and _unchanged(head, item):
            touched.append(item)
            continue
        old = existing.get(url_hash)
        if old is not None and item.partial:
            merged = _merged(old, item.fields)
            item = dataclasses.replace(
                item, fields=merged, content_hash=urls.content_hash(merged), prepared=None
            )
        columns, extra = item.prepared or _columns(item.fields)
        if old is not None:
            changes = _changes(old, columns, extra)
            if not changes:  # a partial item that repeats what is stored
                touched.append(item)
                continue
            revisions.append((url_hash, changes))
        rows.append((url_hash, item, columns, extra))
    if rows:
        ids = store_sql.upsert(
            crawl_id=crawl_id, source_id=source_id, workspace_id=workspace_id, rows=rows, now=now
        )
        for url_hash, *_ in rows:
            (stored.changed if url_hash in heads else stored.new).append(ids[url_hash])
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
    if not touch:
        stored.unchanged += len(touched)
        return
    stored.unchanged += store_sql.touch(
        crawl_id=crawl_id,
        source_id=source_id,
        items=touched,
        not_modified=[h for h in not_modified if h not in batch],
        now=now,
    )


def _unchanged(head: store_sql.Head, item: Item) -> bool:
    return head.content_hash == item.content_hash or bool(
        item.version and item.version < head.version
    )


def _merged(old: Bid, fields: Mapping[str, object]) -> dict[str, object]:
    """A partial item's fields over the stored bid's (columns and extras)."""
    merged: dict[str, object] = {name: getattr(old, name) for name in BID_FIELDS}
    merged.update(old.extra)
    merged.update(fields)
    return merged


def _changes(old: Bid, columns: dict, extra: dict) -> dict:
    """{field: [old, new]} of what differs, extras as "extra.<key>"."""
    changes = {
        name: [jsonable(getattr(old, name)), jsonable(value)]
        for name, value in columns.items()
        if getattr(old, name) != value
    }
    for key in sorted(set(old.extra) | set(extra)):
        if old.extra.get(key) != extra.get(key):
            changes[f"extra.{key}"] = [old.extra.get(key), extra.get(key)]
    return changes


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
