"""Notification reads: a user's notifications and unread count, rules, crawl outcome recipients."""

from __future__ import annotations

from django.db.models import QuerySet

from crawls.models import Crawl, Membership
from notifications.models import AlertRule, Notification


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
    """Every rule; the caller scopes it (api.auth.scoped, or a workspace filter)."""
    return AlertRule.objects.all()


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
