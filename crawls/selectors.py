"""Reads, always scoped to the caller's workspaces."""

from __future__ import annotations

from crawls.models import Membership, Workspace


def workspace_list_for_user(*, user):
    """Workspaces where `user` is a member, by name."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def workspace_get_for_user(*, user, workspace_id: int) -> Workspace:
    """One of the user's workspaces; Workspace.DoesNotExist (→ 404) for any other."""
    return workspace_list_for_user(user=user).get(pk=workspace_id)


def membership_get_for_user(*, user, workspace_id: int) -> Membership:
    """The user's membership of a workspace; Membership.DoesNotExist when not a member."""
    return (
        Membership.objects.visible_to(user)
        .select_related("workspace")
        .get(workspace_id=workspace_id, user=user)
    )


def membership_list_for_user(*, user, workspace_id: int):
    """Members of one of the user's workspaces (empty for a workspace the user is not in)."""
    return (
        Membership.objects.visible_to(user)
        .in_workspace(workspace_id)
        .select_related("user")
        .order_by("role", "user__username")
    )
