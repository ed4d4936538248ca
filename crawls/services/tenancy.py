"""Workspaces, their members and API tokens: who belongs where, with which role.

Writes: one transaction each.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from django_celery_beat.models import PeriodicTask

from crawls.models import ApiToken, Membership, Source, Workspace
from project import dbscope

# --- Workspaces -------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[:60] or "workspace"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def workspace_create(*, owner, name: str) -> Workspace:
    """Create a workspace with `owner` as its owner.

    In the system scope: a slug is unique among every workspace, and the new one is in no
    scope yet. Then the caller's scope takes it in (project/dbscope.py), within the request."""
    with dbscope.system_scope():
        workspace = Workspace.objects.create(name=name, slug=_unique_slug(name))
        Membership.objects.create(workspace=workspace, user=owner, role=Membership.Role.OWNER)
    dbscope.widen(workspace.pk)
    return workspace


@transaction.atomic
def workspace_rename(*, workspace: Workspace, name: str) -> Workspace:
    """Rename a workspace; its slug stays as it was (links and tokens keep working)."""
    workspace.name = name
    workspace.save(update_fields=["name"])
    return workspace


@transaction.atomic
def workspace_delete(*, workspace: Workspace) -> None:
    """Delete a workspace and everything in it, with its sources' beat schedules."""
    PeriodicTask.objects.filter(
        pk__in=Source.objects.in_workspace(workspace)
        .exclude(periodic_task=None)
        .values("periodic_task_id")
    ).delete()
    workspace.delete()


# --- Members: who may change whom; a workspace always keeps an owner ---------------------------
#
# Every adapter (API, admin) changes members through membership_add, membership_role_change and
# membership_remove, naming its `actor`; the rules below are the only copy. Each change locks the
# workspace's row first, so changes of one workspace's members run one after the other and the
# owner count read after the lock is the committed one.

ROLE_MANAGERS_ONLY = "Only owners and admins manage members."
ROLE_OWNERS_ONLY = "Only an owner may grant or take away the owner role."
ROLE_LAST_OWNER = "a workspace needs at least one owner"
MEMBER_ALREADY = "Already a member of this workspace."


class RoleRefused(ValidationError):
    """The actor's role does not allow this change of members (the API answers 403)."""


def _check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"{role!r} is not a role"]})


def _acting_role(*, workspace_id: int, actor) -> str | None:
    """The role `actor` acts with: a Membership its own (read again), a superuser owner's, any
    other user their membership's (None: not a member of the workspace)."""
    if isinstance(actor, Membership):
        if actor.workspace_id != workspace_id:
            return None
        rows = Membership.objects.filter(pk=actor.pk)
    elif actor.is_superuser:
        return Membership.Role.OWNER
    else:
        rows = Membership.objects.filter(workspace_id=workspace_id, user_id=actor.pk)
    return rows.values_list("role", flat=True).first()


def membership_check(
    *, actor, workspace_id: int, membership: Membership | None = None, role: str | None = None
) -> None:
    """RoleRefused unless `actor` (a user or their Membership) may give `membership` (None: a
    newcomer) `role`, or remove it (`role` None): owners and admins manage members, only an
    owner grants or takes away the owner role, and anyone may leave."""
    actor_user_id = actor.user_id if isinstance(actor, Membership) else actor.pk
    if membership is not None and role is None and membership.user_id == actor_user_id:
        return  # leaving
    acting = _acting_role(workspace_id=workspace_id, actor=actor)
    if acting not in Membership.MANAGER_ROLES:
        raise RoleRefused({"role": [ROLE_MANAGERS_ONLY]})
    touched = {role, membership.role if membership is not None else None}
    if Membership.Role.OWNER in touched and acting != Membership.Role.OWNER:
        raise RoleRefused({"role": [ROLE_OWNERS_ONLY]})


def _members_lock(workspace_id: int) -> None:
    """Lock the workspace's row until the transaction ends. FOR NO KEY UPDATE: rows that merely
    reference the workspace (bids, crawls, new members) can still be written meanwhile."""
    Workspace.objects.select_for_update(no_key=True).only("pk").get(pk=workspace_id)


def _keep_an_owner(*, membership: Membership, role: str | None) -> None:
    """ValidationError when `membership` is its workspace's last owner and would stop being one
    (`role` None: removed). Only under _members_lock."""
    if membership.role != Membership.Role.OWNER or role == Membership.Role.OWNER:
        return
    owners = Membership.objects.filter(
        workspace_id=membership.workspace_id, role=Membership.Role.OWNER
    )
    if not owners.exclude(pk=membership.pk).exists():
        raise ValidationError({"role": [ROLE_LAST_OWNER]})


@transaction.atomic
def membership_add(*, workspace: Workspace, user, role: str, actor) -> Membership:
    """Add `user` to `workspace` with `role` as `actor`; ValidationError when already a member."""
    _check_role(role)
    _members_lock(workspace.pk)
    membership_check(actor=actor, workspace_id=workspace.pk, role=role)
    try:
        with transaction.atomic():
            return Membership.objects.create(workspace=workspace, user=user, role=role)
    except IntegrityError as exc:
        raise ValidationError({"user": [MEMBER_ALREADY]}) from exc


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor) -> Membership:
    """Change a member's role as `actor`; a workspace keeps at least one owner. The rules see
    the stored role, whatever `membership.role` says (a form may have set it already)."""
    _check_role(role)
    _members_lock(membership.workspace_id)
    current = Membership.objects.filter(pk=membership.pk).first()
    if current is None:
        raise ValidationError({"user": ["no longer a member of this workspace"]})
    membership_check(actor=actor, workspace_id=current.workspace_id, membership=current, role=role)
    _keep_an_owner(membership=current, role=role)
    current.role = role
    current.save(update_fields=["role"])
    membership.role = role
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    """Remove a member as `actor`, revoking the member's tokens; a workspace keeps an owner."""
    _members_lock(membership.workspace_id)
    current = Membership.objects.filter(pk=membership.pk).first()
    if current is None:
        return  # removed meanwhile
    membership_check(actor=actor, workspace_id=current.workspace_id, membership=current)
    _keep_an_owner(membership=current, role=None)
    ApiToken.objects.filter(workspace_id=current.workspace_id, user_id=current.user_id).update(
        revoked_at=timezone.now()
    )
    current.delete()


# --- API tokens -------------------------------------------------------------------------------

TOKEN_PREFIX = "fst_"  # noqa: S105 - a public marker, not a secret
TOKEN_TOUCH_SECONDS = 60  # last_used_at is written at most this often per token


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, workspace: Workspace, name: str) -> tuple[ApiToken, str]:
    """A new token of `user` in `workspace` (a member of it); the plain token is returned once."""
    if not Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError({"workspace": ["you are not a member of this workspace"]})
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        workspace=workspace, user=user, name=name, prefix=prefix, key_hash=token_hash(raw)
    )
    return token, raw


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token `raw` names, if its user is active and still a member; else None.

    The token carries its user and `role` (the member's role in the token's workspace).
    """
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < len(TOKEN_PREFIX) + 9:
        return None
    token = _token_lookup(raw[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8])
    if token is None or not hmac.compare_digest(token.key_hash, token_hash(raw)):
        return None
    now = timezone.now()
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() > TOKEN_TOUCH_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _token_lookup(prefix: str) -> ApiToken | None:
    """Token, user and membership in one statement, on every API request.

    Written as SQL over the models' columns: building the same query with the ORM
    (select_related + Exists) cost ~2 ms of Python per request, four times the query itself.
    """
    sql, token_fields, user_model, user_fields = _token_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    token = ApiToken.from_db(connection.alias, token_fields, row[:split])
    token.user = user_model.from_db(connection.alias, user_fields, row[split:-1])
    token.role = row[-1]
    return token


@functools.cache
def _token_statement() -> tuple[str, list[str], type, list[str]]:
    user_model = ApiToken._meta.get_field("user").related_model
    token_columns = ApiToken._meta.concrete_fields
    user_columns = user_model._meta.concrete_fields
    columns = ", ".join(
        [f't."{f.column}"' for f in token_columns] + [f'u."{f.column}"' for f in user_columns]
    )
    # Table and column names come from the models; the prefix is a parameter.
    sql = (
        f"SELECT {columns}, m.role FROM {ApiToken._meta.db_table} t"  # noqa: S608
        f" JOIN {user_model._meta.db_table} u ON u.id = t.user_id AND u.is_active"
        f" JOIN {Membership._meta.db_table} m"
        " ON m.workspace_id = t.workspace_id AND m.user_id = t.user_id"
        " WHERE t.prefix = %s AND t.revoked_at IS NULL"
    )
    return sql, [f.attname for f in token_columns], user_model, [f.attname for f in user_columns]


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
