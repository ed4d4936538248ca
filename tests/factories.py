"""Rows for tests, made the way crawls make them (unique URLs, hashes, times)."""

from __future__ import annotations

import datetime as dt
import itertools

from crawls.engine.urls import url_hash
from crawls.models import Bid

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def new_bid(source, **fields) -> Bid:
    """An unsaved bid of `source` (bulk_create them, or save)."""
    n = next(_numbers)
    url = fields.pop("url", f"https://example.org/notices/{n}")
    values = {
        "title": f"Notice {n}",
        "first_seen_at": NOW,
        "last_seen_at": NOW,
        "changed_at": NOW,
        "content_hash": f"{n:032x}",
        **fields,
    }
    return Bid(
        workspace_id=source.workspace_id, source=source, url=url, url_hash=url_hash(url), **values
    )


def make_bid(source, **fields) -> Bid:
    bid = new_bid(source, **fields)
    bid.save()
    return bid
