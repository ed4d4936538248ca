"""Workspaces and their members: the tenancy every domain row hangs from (WorkspaceOwned,
WorkspaceScopedQuerySet)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, allow_unicode=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = [Lower("name"), "id"]

    def __str__(self) -> str:
        return self.name


class WorkspaceScopedQuerySet(models.QuerySet[Any]):
    """The one scoping mechanism: reads of workspace-owned rows filter through here."""

    def in_workspace(self, workspace: Workspace | int) -> WorkspaceScopedQuerySet:
        return self.filter(workspace=workspace)

    def visible_to(self, user: Any, *, roles: list[str] | None = None) -> WorkspaceScopedQuerySet:
        """Rows of the workspaces where `user` is a member (with one of `roles`, if given)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        memberships = Membership.objects.filter(user=user)
        if roles is not None:
            memberships = memberships.filter(role__in=roles)
        return self.filter(workspace_id__in=memberships.values("workspace_id"))


class WorkspaceOwned(models.Model):
    """Base of every domain model: the row carries its workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)

    objects = WorkspaceScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(WorkspaceOwned):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["workspace_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    # Roles that may change a workspace's data; viewers only read.
    WRITER_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER)
    # Roles that may manage the workspace itself (members, tokens, settings).
    MANAGER_ROLES = (Role.OWNER, Role.ADMIN)

    @property
    def can_write(self) -> bool:
        return self.role in self.WRITER_ROLES

    @property
    def can_manage(self) -> bool:
        return self.role in self.MANAGER_ROLES
