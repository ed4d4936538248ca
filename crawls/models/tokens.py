"""API tokens: bearer tokens of a user in a workspace."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from crawls.models.workspaces import Workspace, WorkspaceOwned


class ApiToken(WorkspaceOwned):
    """A bearer token of one user in one workspace: shown once, stored hashed, revocable."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, help_text="Identifies the token.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole token.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
