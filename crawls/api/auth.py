"""Authentication, permissions and scoping for the API.

Callers authenticate with a session (browser, CSRF enforced) or `Authorization: Bearer <token>`.
Every queryset goes through `scoped()`: the caller's workspaces, or the token's workspace when a
token is used (selectors.workspace_ids_for). Rows of other workspaces are absent: they answer 404.
"""

from __future__ import annotations

import contextlib

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from crawls import selectors, services
from crawls.models import ApiToken, Membership, Workspace
from project import dbscope


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Expected 'Authorization: Bearer <token>'.")
        # The token decides the database scope: looked up in the system scope, then the
        # request narrows to the token's workspace (project/dbscope.py, until the request ends).
        with dbscope.system_scope():
            token = services.token_authenticate(raw=header[1].decode("latin-1"))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        dbscope.set_scope(dbscope.encode([token.workspace_id]))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="forest"'  # unauthenticated requests get 401, not 403


def request_token(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def workspace_ids_of(request):
    """Ids of the workspaces the caller reads: the token's, else the user's (lazy)."""
    return selectors.workspace_ids_for(user=request.user, token=request_token(request))


def scoped(request, queryset):
    """`queryset` (workspace-owned rows) limited to what the caller may see."""
    return queryset.filter(workspace_id__in=workspace_ids_of(request))


def workspaces_of(request):
    """The workspaces the caller may name: theirs, narrowed to the token's workspace."""
    if request is None:  # schema generation
        return Workspace.objects.none()
    return Workspace.objects.filter(pk__in=workspace_ids_of(request))


def require_role(request, workspace_id: int, roles, message: str) -> None:
    """403 with `message` unless the caller's role in the workspace is one of `roles`."""
    if role_in(request, workspace_id) not in roles:
        raise exceptions.PermissionDenied(message)


def acting_member(request, workspace_id: int) -> Membership:
    """The caller's membership in a workspace: the `actor` of the membership services. A token
    acts only in its own workspace; superusers act as members, as everywhere in the API."""
    token = request_token(request)
    member = None
    if token is None or token.workspace_id == workspace_id:
        member = Membership.objects.filter(workspace_id=workspace_id, user=request.user).first()
    if member is None:
        raise exceptions.PermissionDenied(services.ROLE_MANAGERS_ONLY)
    return member


@contextlib.contextmanager
def refusals_as_403():
    """A service's RoleRefused (the actor's role does not allow it) answers 403 with its message;
    its other ValidationErrors answer 400 (crawls/api/errors.py)."""
    try:
        yield
    except services.RoleRefused as refused:
        raise exceptions.PermissionDenied(refused.messages[0]) from refused


def role_in(request, workspace_id: int) -> str | None:
    """The caller's role in a workspace (None: not a member, or outside the token's)."""
    token = request_token(request)
    if token is not None:  # the token's lookup read the role
        return token.role if token.workspace_id == workspace_id else None
    cache = request.__dict__.setdefault("_forest_roles", {})
    if workspace_id not in cache:
        cache[workspace_id] = (
            Membership.objects.filter(workspace_id=workspace_id, user=request.user)
            .values_list("role", flat=True)
            .first()
        )
    return cache[workspace_id]


class WorkspaceRolePermission(permissions.BasePermission):
    """Members read; viewers only read; owners and admins manage (views say which they need)."""

    message = "Your role in this workspace does not allow this."
    write_roles = Membership.WRITER_ROLES

    def has_object_permission(self, request, view, obj) -> bool:
        role = role_in(request, obj.workspace_id)
        if role is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return role in getattr(view, "write_roles", self.write_roles)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes BearerTokenAuthentication."""

    target_class = "crawls.api.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer fst_…` (POST /api/v1/tokens/).",
        }
