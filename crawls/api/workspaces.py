"""Workspaces, their members and the caller's API tokens.

- workspaces: the caller's (a token: its own workspace only), with the caller's role; anyone
  signed in creates one and owns it; owners and admins rename; only owners delete.
- members: members of the caller's workspaces (`?workspace=` narrows); owners and admins add,
  change roles and remove; only an owner grants or takes away the owner role; anyone may leave;
  a workspace keeps at least one owner (400 naming `role`). These rules are the services'
  (crawls.services.membership_check): the views name the caller's membership as the actor and
  answer a RoleRefused with 403.
- tokens: the caller's own tokens only; a token is shown once, when it is created, and only its
  hash is kept; revoking keeps the row (revoked_at) and the token then answers 401.

A token acts with its user's current role in its own workspace, but cannot create workspaces or
tokens: those are signed-in (session) actions, so a leaked token cannot outlive its revocation
by minting another, nor reach beyond its workspace.
"""

from __future__ import annotations

import contextlib

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crawls import services
from crawls.api.auth import (
    acting_member,
    refusals_as_403,
    request_token,
    role_in,
    workspaces_of,
)
from crawls.api.base import ScopedViewSetMixin
from crawls.api.schema import error_responses
from crawls.api.serializers import (
    MembershipCreateSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
    WorkspaceSerializer,
)
from crawls.filters import MembershipFilter, TokenFilter
from crawls.models import ApiToken, Membership, Workspace


@contextlib.contextmanager
def _user_named_by(field: str):
    """The service's errors about the `user` (already a member) under the field that named them
    (`username` or `email`)."""
    try:
        yield
    except ValidationError as exc:
        if not hasattr(exc, "error_dict") or "user" not in exc.error_dict:
            raise
        raise ValidationError({field: exc.message_dict["user"]}) from exc


def _session_only(request, what: str) -> None:
    if request_token(request) is not None:
        raise exceptions.PermissionDenied(f"API tokens cannot {what}: sign in to do it.")


# --- Workspaces -------------------------------------------------------------------------------


class WorkspacePermission(permissions.BasePermission):
    """Members read; owners and admins rename; owners delete."""

    message = "Your role in this workspace does not allow this."

    def has_object_permission(self, request, view, obj) -> bool:
        role = getattr(obj, "role", None)  # annotated by WorkspaceViewSet.get_queryset
        if request.method in permissions.SAFE_METHODS:
            return role is not None
        if request.method == "DELETE":
            return role == Membership.Role.OWNER
        return role in Membership.MANAGER_ROLES


@extend_schema_view(
    list=extend_schema(
        responses={200: WorkspaceSerializer(many=True), **error_responses(400, 401)}
    ),
    retrieve=extend_schema(responses={200: WorkspaceSerializer, **error_responses(401, 404)}),
    create=extend_schema(responses={201: WorkspaceSerializer, **error_responses(400, 401, 403)}),
    partial_update=extend_schema(
        responses={200: WorkspaceSerializer, **error_responses(400, 401, 403, 404)}
    ),
    destroy=extend_schema(responses={204: None, **error_responses(401, 403, 404)}),
)
class WorkspaceViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's workspaces, with the caller's role in each."""

    serializer_class = WorkspaceSerializer
    permission_classes = [permissions.IsAuthenticated, WorkspacePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Workspace.objects.none()
        user = self.request.user
        role = Membership.objects.filter(workspace=OuterRef("pk"), user=user).values("role")
        return workspaces_of(self.request).annotate(role=Subquery(role[:1]))

    def create(self, request, *args, **kwargs):
        _session_only(request, "create workspaces")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.workspace_create(owner=request.user, **serializer.validated_data)
        workspace.role = Membership.Role.OWNER
        return Response(self.get_serializer(workspace).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        workspace = self.get_object()
        serializer = self.get_serializer(workspace, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if "name" in serializer.validated_data:
            services.workspace_rename(workspace=workspace, **serializer.validated_data)
        return Response(self.get_serializer(workspace).data)

    def destroy(self, request, *args, **kwargs):
        services.workspace_delete(workspace=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Members ----------------------------------------------------------------------------------


class MembershipPermission(permissions.BasePermission):
    """Members of the row's workspace; who may add, change or remove whom is the services' rule
    (crawls.services.membership_check), answered 403 by the views."""

    def has_object_permission(self, request, view, obj) -> bool:
        return role_in(request, obj.workspace_id) is not None


@extend_schema_view(
    list=extend_schema(
        responses={200: MembershipSerializer(many=True), **error_responses(400, 401)}
    ),
    retrieve=extend_schema(responses={200: MembershipSerializer, **error_responses(401, 404)}),
    create=extend_schema(
        request=MembershipCreateSerializer,
        responses={201: MembershipSerializer, **error_responses(400, 401, 403)},
    ),
    partial_update=extend_schema(
        request=MembershipRoleSerializer,
        responses={200: MembershipSerializer, **error_responses(400, 401, 403, 404)},
    ),
    destroy=extend_schema(responses={204: None, **error_responses(400, 401, 403, 404)}),
)
class MembershipViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Members of the caller's workspaces."""

    serializer_class = MembershipSerializer
    permission_classes = [permissions.IsAuthenticated, MembershipPermission]
    filterset_class = MembershipFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def base_queryset(self):
        return Membership.objects.select_related("user")

    def create(self, request, *args, **kwargs):
        serializer = MembershipCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)  # 403 when the caller may not add
        data = serializer.validated_data
        with refusals_as_403(), _user_named_by(data["named_by"]):
            membership = services.membership_add(
                workspace=data["workspace"],
                user=data["user"],
                role=data["role"],
                actor=data["actor"],
            )
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = acting_member(request, membership.workspace_id)
        with refusals_as_403():
            services.membership_role_change(
                membership=membership, role=serializer.validated_data["role"], actor=actor
            )
        return Response(self.get_serializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        membership = self.get_object()
        actor = acting_member(request, membership.workspace_id)
        with refusals_as_403():
            services.membership_remove(membership=membership, actor=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- API tokens -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: TokenSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: TokenSerializer, **error_responses(401, 404)}),
    create=extend_schema(
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **error_responses(400, 401, 403)},
        description="A new token of the caller in one of the caller's workspaces. The answer's "
        "`token` is the only time the token is shown. Signed-in callers only: a token cannot "
        "create tokens.",
    ),
    destroy=extend_schema(
        responses={204: None, **error_responses(401, 404)},
        description="Revoke the token (it is kept, with `revoked_at`, and answers 401 from now).",
    ),
    revoke=extend_schema(
        request=None,
        responses={200: TokenSerializer, **error_responses(401, 404)},
        description="Revoke the token; the same as DELETE, answering with the revoked token.",
    ),
)
class TokenViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own API tokens (a token sees the tokens of its workspace)."""

    serializer_class = TokenSerializer
    permission_classes = [permissions.IsAuthenticated]  # own tokens only: see get_queryset
    filterset_class = TokenFilter
    http_method_names = ["get", "post", "delete", "head", "options"]

    def base_queryset(self):
        return ApiToken.objects.all()

    def get_queryset(self):
        tokens = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return tokens
        return tokens.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        _session_only(request, "create tokens")
        serializer = TokenCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        token, raw = services.token_create(user=request.user, **serializer.validated_data)
        token.token = raw
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.token_revoke(token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        token = services.token_revoke(token=self.get_object())
        return Response(self.get_serializer(token).data)
