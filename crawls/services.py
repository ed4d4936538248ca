"""Writes: one transaction each."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils.text import slugify

from crawls.models import Membership, Workspace


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[:60] or "workspace"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def workspace_create(*, owner, name: str) -> Workspace:
    """Create a workspace with `owner` as its owner."""
    workspace = Workspace.objects.create(name=name, slug=_unique_slug(name))
    Membership.objects.create(workspace=workspace, user=owner, role=Membership.Role.OWNER)
    return workspace


def membership_set(*, workspace: Workspace, user, role: str) -> Membership:
    """Add `user` to `workspace` with `role`, or change the role of an existing member."""
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership
