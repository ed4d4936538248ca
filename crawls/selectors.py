"""Reads, always scoped to the caller's workspaces."""

from __future__ import annotations

import heapq
import zoneinfo
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.db.models.functions import Lower

from crawls.models import (
    ApiToken,
    Bid,
    BidRevision,
    Crawl,
    CrawlEvent,
    Membership,
    Source,
    Workspace,
)


def workspace_list_for_user(*, user):
    """Workspaces where `user` is a member, by name."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def workspace_ids_for(*, user, token: ApiToken | None = None):
    """Ids of the workspaces a caller reads: with an API token its workspace alone (the token's
    lookup checked that its user is an active member there), else the user's (none for an
    anonymous or inactive user). A list for a token; for a user a lazy query of memberships,
    a subquery inside a filter and one query when listed."""
    if token is not None:
        return [token.workspace_id]
    if not user.is_authenticated or not user.is_active:
        return []
    return Membership.objects.filter(user=user).values_list("workspace_id", flat=True)


# --- Workspace API: finding the user to add as a member ------------------------------------------


def users_matching(*, username: str | None = None, email: str | None = None) -> list:
    """Active users with this username, or this e-mail address (any case); at most two."""
    users = get_user_model().objects.filter(is_active=True)
    if username is not None:
        users = users.filter(username=username)
    else:
        users = users.filter(email__iexact=email)
    return list(users.order_by("id")[:2])


# --- Bids -----------------------------------------------------------------------------------------

# What lists and exports read of a bid (not its hashes and HTTP validators).
BID_FIELDS = (
    "id", "workspace_id", "source_id", "url", "title", "department", "views", "post_date",
    "amount", "deadline", "reference", "currency", "status", "procurement_method",
    "classifications", "extra", "first_seen_at", "last_seen_at", "changed_at", "first_crawl_id",
    "last_crawl_id", "missed_crawls", "removed_at",
)  # fmt: skip
BID_REVISIONS_SHOWN = 100


def bid_list():
    """Bids with their source's name (one join, no query per row); the caller scopes them."""
    return Bid.objects.only(*BID_FIELDS).annotate(source_name=F("source__name"))


def bid_revisions(*, bid: Bid, limit: int = BID_REVISIONS_SHOWN) -> list[BidRevision]:
    """The bid's latest field changes, newest first."""
    return list(
        BidRevision.objects.filter(bid=bid)
        .only("id", "bid_id", "crawl_id", "changes", "changed_at")
        .order_by("-changed_at", "-id")[:limit]
    )


BID_EXPORT_CHUNK = 2000
# Orderings whose indexes are partial (a value; no value): their pages read the bids without a
# value apart, by id (KeysetPagination.keyset_nulls_apart).
NULLS_APART_FIELDS = frozenset({"deadline"})


def bid_rows_in_order(
    *,
    queryset,
    field: str,
    workspace_ids=None,
    chunk_size: int = BID_EXPORT_CHUNK,
    ascending: bool = False,
) -> Iterator[dict]:
    """Every bid of `queryset` as a dict, by `field` descending (nulls last) then id descending;
    or both ascending (still nulls last) with `ascending`.

    Read in keyset chunks: constant memory, no transaction or server-side cursor held between
    chunks, and each chunk an index range scan where an index (workspace, field DESC NULLS LAST,
    id DESC) exists (or ascending, for `ascending`). Rows inserted meanwhile appear or not, but
    no row is read twice or missed (while its `field` does not change). Several workspaces are
    walked one by one and merged, since one index walk orders a single workspace only.
    """
    rows = queryset.values(*BID_FIELDS, "source_name")
    workspace_ids = list(workspace_ids or [])
    if len(workspace_ids) <= 1:
        return _keyset_walk(rows, field, chunk_size, ascending)
    size = max(100, chunk_size // len(workspace_ids))
    walks = [
        _keyset_walk(rows.filter(workspace_id=w), field, size, ascending) for w in workspace_ids
    ]
    if ascending:
        return heapq.merge(*walks, key=lambda row: _ascending_key(row, field))
    return heapq.merge(*walks, key=lambda row: _descending_key(row, field), reverse=True)


def _descending_key(row: dict, field: str) -> tuple:
    value = row[field]
    return (value is not None, value if value is not None else 0, row["id"])


def _ascending_key(row: dict[str, Any], field: str) -> tuple[Any, ...]:
    value = row[field]
    return (value is None, value if value is not None else 0, row["id"])


def _keyset_walk(
    rows: Any, field: str, chunk_size: int, ascending: bool = False
) -> Iterator[dict[str, Any]]:
    direction = "asc" if ascending else "desc"
    order = (getattr(F(field), direction)(nulls_last=True), getattr(F("id"), direction)())
    beyond, reach, id_beyond = ("gt", "gte", "id__gt") if ascending else ("lt", "lte", "id__lt")
    present = rows.filter(**{f"{field}__isnull": False}).order_by(*order)
    chunk = list(present[:chunk_size])
    while chunk:
        yield from chunk
        if len(chunk) < chunk_size:
            break
        value, last_id = chunk[-1][field], chunk[-1]["id"]
        # The redundant `field <= value` is what makes this an index range, not a filter.
        after = Q(**{f"{field}__{reach}": value}) & (
            Q(**{f"{field}__{beyond}": value}) | Q(**{field: value, id_beyond: last_id})
        )
        chunk = None  # one chunk in memory at a time, not two while the next is read
        chunk = list(present.filter(after)[:chunk_size])
    missing = rows.filter(**{f"{field}__isnull": True})
    # Nulls by id alone where the field's indexes are partial (bid_ws_no_deadline serves that).
    missing = missing.order_by(*(order[1:] if field in NULLS_APART_FIELDS else order))
    chunk = list(missing[:chunk_size])
    while chunk:
        yield from chunk
        if len(chunk) < chunk_size:
            break
        last_id = chunk[-1]["id"]
        chunk = None
        chunk = list(missing.filter(**{id_beyond: last_id})[:chunk_size])


# --- Dashboard (added with crawls/views.py) -------------------------------------------------------

DASHBOARD_CRAWLS_SHOWN = 20
CRAWL_EVENTS_SHOWN = 200
CRAWL_ITEMS_SHOWN = 50


def membership_list_of_user(*, user) -> list[Membership]:
    """The user's memberships with their workspaces, by workspace name (the switcher's order)."""
    if not user.is_authenticated or not user.is_active:
        return []
    return list(
        Membership.objects.filter(user=user)
        .select_related("workspace")
        .order_by(Lower("workspace__name"), "workspace_id")
    )


def workspace_counts(*, workspace_id: int) -> dict[str, int]:
    """Sources, bids and active crawls of a workspace (three index-served counts)."""
    return {
        "sources": Source.objects.in_workspace(workspace_id).count(),
        "bids": Bid.objects.in_workspace(workspace_id).count(),
        "running": Crawl.objects.in_workspace(workspace_id).filter(status__in=Crawl.ACTIVE).count(),
    }


def crawl_list_for_workspace(*, workspace_id: int, limit: int = DASHBOARD_CRAWLS_SHOWN) -> list:
    """The workspace's latest crawls, newest first, with their source's name."""
    crawls = Crawl.objects.in_workspace(workspace_id).annotate(source_name=F("source__name"))
    return list(crawls.order_by("-id")[:limit])


def crawl_get_for_user(*, user, crawl_id: int) -> Crawl:
    """One of the user's crawls with its source; Crawl.DoesNotExist (→ 404) for any other."""
    return Crawl.objects.visible_to(user).select_related("source").get(pk=crawl_id)


def crawl_events_latest(
    *, crawl: Crawl, limit: int = CRAWL_EVENTS_SHOWN, types: tuple[str, ...] = ()
) -> list[CrawlEvent]:
    """The crawl's latest events up to its current sequence, oldest first."""
    events = CrawlEvent.objects.filter(crawl_id=crawl.pk, sequence__lte=crawl.event_seq)
    if types:
        events = events.filter(type__in=types)
    return list(reversed(events.order_by("-sequence")[:limit]))


def bid_list_for_crawl(*, crawl_id: int, limit: int = CRAWL_ITEMS_SHOWN) -> list:
    """Bids a crawl found or last saw, newest first."""
    bids = bid_list().filter(Q(last_crawl_id=crawl_id) | Q(first_crawl_id=crawl_id))
    return list(bids.order_by("-id")[:limit])


def bid_get_for_user(*, user: Any, bid_id: int) -> Bid:
    """One of the user's bids with its source's name; Bid.DoesNotExist (→ 404) for any other."""
    bid: Bid = Bid.objects.visible_to(user).annotate(source_name=F("source__name")).get(pk=bid_id)
    return bid


def source_list_for_workspace(*, workspace_id: int):
    """The workspace's sources by name."""
    return Source.objects.in_workspace(workspace_id).order_by(Lower("name"), "id")


def source_get_for_user(*, user, source_id: int) -> Source:
    """One of the user's sources; Source.DoesNotExist (→ 404) for any other."""
    return Source.objects.visible_to(user).get(pk=source_id)


def workspace_timezone(*, sources: Iterable[Source]) -> zoneinfo.ZoneInfo:
    """The zone the dashboard shows a workspace's times in. A workspace has no zone of its own:
    its sources' schedule_timezone when they all name the same one, else settings.TIME_ZONE."""
    zones = {source.schedule_timezone for source in sources}
    name = zones.pop() if len(zones) == 1 else settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


# --- API tokens -----------------------------------------------------------------------------------


def token_list_for_user(*, user, workspace_id: int) -> list[ApiToken]:
    """The user's own tokens in one workspace (revoked ones too), newest first."""
    return list(ApiToken.objects.visible_to(user).in_workspace(workspace_id).filter(user=user))


def token_get_for_user(*, user, token_id: int) -> ApiToken:
    """One of the user's own tokens; ApiToken.DoesNotExist (→ 404) for any other."""
    return ApiToken.objects.visible_to(user).filter(user=user).get(pk=token_id)
