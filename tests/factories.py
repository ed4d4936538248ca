"""Rows for tests, made the way crawls make them (unique URLs, hashes, times), and sources made
through the service."""

from __future__ import annotations

import datetime as dt
import itertools

from django.db.models import Max

from crawls import services
from crawls.demo.board import DEMO_RULES, BoardConfig, notices
from crawls.engine.urls import url_hash
from crawls.models import Bid, Crawl, Membership, Source

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
START = "https://bids.example.org/notices"  # valid for the guard; nothing fetches it here
_numbers = itertools.count(1)


def make_source(workspace, name="Seoul board", **values) -> Source:
    """A source of `workspace` with the demo board's rules, starting at START unless told."""
    values = {"start_urls": [START], "rules": DEMO_RULES, **values}
    return services.source_create(workspace=workspace, name=name, **values)


def start_crawl(source, **values) -> Crawl:
    """A queued crawl of `source` (no worker task: workers=0)."""
    return services.crawl_start(source=source, workers=0, **values)


def succeeded_crawl(source) -> Crawl:
    """A crawl row of `source` that has succeeded (no frontier, no events)."""
    return Crawl.objects.create(
        workspace=source.workspace, source=source, status=Crawl.Status.SUCCEEDED
    )


def finish_crawl(crawl, status=Crawl.Status.SUCCEEDED) -> Crawl:
    """`crawl`, set to `status` directly (no event, no worker)."""
    Crawl.objects.filter(pk=crawl.pk).update(status=status)
    crawl.refresh_from_db()
    return crawl


def membership(workspace, user) -> Membership:
    return Membership.objects.get(workspace=workspace, user=user)


def join(*, workspace, user, role: str) -> Membership:
    """`user` in `workspace` with `role`, through the production services acting as one of the
    workspace's owners: added when not a member yet, else the role changed."""
    owner = (
        Membership.objects.filter(workspace=workspace, role=Membership.Role.OWNER)
        .order_by("id")
        .first()
        .user
    )
    current = Membership.objects.filter(workspace=workspace, user=user).first()
    if current is None:
        return services.membership_add(workspace=workspace, user=user, role=role, actor=owner)
    return services.membership_role_change(membership=current, role=role, actor=owner)


def absent_pk(model) -> int:
    """A primary key that no row of `model` has: one past the largest (never a guessed constant)."""
    return (model.objects.aggregate(largest=Max("pk"))["largest"] or 0) + 1


def absent_notice_path(config: BoardConfig) -> str:
    """The path of no notice of the demo board of `config` at epoch 0 (one past the last): 404."""
    return f"/notices/{max(notice.id for notice in notices(config)) + 1}"


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
