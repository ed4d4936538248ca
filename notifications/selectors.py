"""Notification reads: a user's notifications and unread count, rules, crawl outcome recipients."""

from __future__ import annotations

import hmac
from typing import Any, NamedTuple

from django.db.models import F, Q, QuerySet
from django.http import QueryDict
from django.utils.http import urlencode

from crawls.filters import BidFilter
from crawls.models import Bid, BidRevision, Crawl, Membership
from notifications.models import (
    FEED_PREFIX_LENGTH,
    AlertRule,
    Channel,
    ChannelDelivery,
    FeedToken,
    Notification,
    feed_token_hash,
)

FEED_MAX_ENTRIES = 50


def filter_querydict(filter: dict[str, Any]) -> QueryDict:
    """A saved filter as the query string the API would have received."""
    data = QueryDict(mutable=True)
    for name, value in filter.items():
        values = value if isinstance(value, list) else [value]
        data.setlist(name, [str(v) for v in values])
    return data


def notification_list_for_user(*, user) -> QuerySet[Notification]:
    """The user's own notifications, newest first (the caller scopes them to workspaces)."""
    return Notification.objects.filter(recipient=user)


def notification_unread_count(*, user_id: int, workspace_id: int | None = None) -> int:
    """Unread notifications of a user (in one workspace, if given), served by a partial index."""
    unread = Notification.objects.filter(
        recipient_id=user_id,
        read_at=None,
        workspace_id__in=Membership.objects.filter(user_id=user_id).values("workspace_id"),
    )
    if workspace_id is not None:
        unread = unread.filter(workspace_id=workspace_id)
    return unread.count()


def alert_rule_list() -> QuerySet[AlertRule]:
    """Every rule with its channel ids; the caller scopes it (api.auth.scoped, or a filter)."""
    return AlertRule.objects.prefetch_related("channels")


def alert_rules_to_match(*, workspace_id: int) -> list[AlertRule]:
    """Active rules of a workspace whose owner is still one of its members."""
    return list(
        AlertRule.objects.filter(
            workspace_id=workspace_id,
            is_active=True,
            owner__memberships__workspace_id=workspace_id,
            owner__is_active=True,
        ).order_by("id")
    )


def alert_rules_reminding() -> list[AlertRule]:
    """Active rules with deadline reminders whose owner is still a member of their workspace
    (the partial index alertrule_reminding)."""
    return list(
        AlertRule.objects.filter(
            is_active=True,
            remind_days__isnull=False,
            owner__is_active=True,
            owner__memberships__workspace_id=F("workspace_id"),
        ).order_by("id")
    )


def crawl_outcome_recipients(*, crawl: Crawl, succeeded: bool) -> list[int]:
    """Who hears of a crawl's end: its creator (if still a member); for a failure without one,
    the workspace's owners and admins. A success without a creator (scheduled) tells nobody."""
    members = Membership.objects.filter(workspace_id=crawl.workspace_id, user__is_active=True)
    if crawl.created_by_id is not None:
        creator = members.filter(user_id=crawl.created_by_id).values_list("user_id", flat=True)
        found = list(creator)
        if found or succeeded:
            return found
    elif succeeded:
        return []
    managers = members.filter(role__in=Membership.MANAGER_ROLES).order_by("user_id")
    return list(managers.values_list("user_id", flat=True))


def crawl_degraded_recipients(*, crawl: Crawl) -> list[int]:
    """Who hears of a degraded crawl: the workspace's owners and admins, and its creator while
    a member."""
    members = Membership.objects.filter(workspace_id=crawl.workspace_id, user__is_active=True)
    managers = Q(role__in=Membership.MANAGER_ROLES)
    if crawl.created_by_id is not None:
        managers |= Q(user_id=crawl.created_by_id)
    return list(members.filter(managers).order_by("user_id").values_list("user_id", flat=True))


def feed_token_list(*, rule: AlertRule) -> QuerySet[FeedToken]:
    """The rule's feed tokens, revoked ones too, newest first."""
    return FeedToken.objects.filter(rule=rule).order_by("-id")


def feed_token_find(*, raw: str) -> FeedToken | None:
    """The active token `raw` names, with its rule, while its creator is an active member of the
    rule's workspace; else None (unknown, revoked and orphaned alike). One query."""
    if len(raw) <= FEED_PREFIX_LENGTH:
        return None
    token: FeedToken | None = (
        FeedToken.objects.select_related("rule")
        .filter(
            prefix=raw[:FEED_PREFIX_LENGTH],
            revoked_at=None,
            created_by__is_active=True,
            created_by__memberships__workspace_id=F("workspace_id"),
        )
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, feed_token_hash(raw)):
        return None
    return token


class FeedEntry(NamedTuple):
    bid: Bid
    changes: dict[str, Any]  # its latest revision's {field: [old, new]}; {}: none yet


def feed_bids(*, rule: AlertRule, limit: int = FEED_MAX_ENTRIES) -> list[FeedEntry]:
    """The bids of the rule's workspace its filter matches, newest changed first, each with
    what its latest revision changed. Two queries."""
    base = Bid.objects.filter(workspace_id=rule.workspace_id)
    filterset = BidFilter(QueryDict(urlencode(rule.filter, doseq=True)), queryset=base)
    if not filterset.is_valid():  # saved before BidFilter changed: never widen it silently
        return []
    bids = list(filterset.qs.order_by("-changed_at", "-id")[:limit])
    latest = (
        BidRevision.objects.filter(bid_id__in=[bid.pk for bid in bids])
        .order_by("bid_id", "-changed_at", "-id")
        .distinct("bid_id")
        .values_list("bid_id", "changes")
    )
    changes: dict[int, dict[str, Any]] = dict(latest) if bids else {}
    return [FeedEntry(bid, changes.get(bid.pk, {})) for bid in bids]


# --- Channels ------------------------------------------------------------------------------------

CHANNEL_DELIVERIES_SHOWN = 50


def channel_list_for_user(*, user: Any) -> QuerySet[Channel]:
    """The user's own channels (the caller scopes them to workspaces)."""
    return Channel.objects.filter(owner=user)


def channel_delivery_list(*, channel: Channel) -> list[ChannelDelivery]:
    """A channel's latest deliveries, newest first."""
    return list(channel.deliveries.order_by("-id")[:CHANNEL_DELIVERIES_SHOWN])
