"""/api/v1/notifications/ (the caller's own) and /api/v1/alert-rules/ (the caller's workspaces)."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crawls.api.auth import request_token, require_role
from crawls.api.base import ScopedViewSetMixin
from crawls.api.schema import error_responses
from crawls.models import Membership
from notifications import channels, selectors, services
from notifications.models import AlertRule, Notification
from notifications.serializers import (
    AlertRuleCreatedSerializer,
    AlertRuleSerializer,
    FeedTokenCreatedSerializer,
    FeedTokenSerializer,
    NotificationSerializer,
    ReadAllSerializer,
    UnreadCountSerializer,
)

UNREAD = {"true": True, "false": False}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "unread", str, enum=list(UNREAD), description="Only unread (true) or read (false)."
            )
        ],
        responses={200: NotificationSerializer(many=True), **error_responses(400, 401)},
    ),
    retrieve=extend_schema(responses={200: NotificationSerializer, **error_responses(401, 404)}),
)
@extend_schema(tags=["notifications"])
class NotificationViewSet(
    ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's notifications, newest first (with a token: those of its workspace)."""

    serializer_class = NotificationSerializer
    keyset_ordering = ("id",)
    write_roles = tuple(Membership.Role)  # marking read is no change to the workspace

    def base_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return selectors.notification_list_for_user(user=self.request.user)

    def filter_queryset(self, queryset):
        raw = self.request.query_params.get("unread")
        if raw is None or self.action != "list":
            return queryset
        if raw not in UNREAD:
            raise exceptions.ValidationError({"unread": ["must be true or false"]})
        return queryset.filter(read_at__isnull=UNREAD[raw])

    def _workspace_id(self) -> int | None:
        token = request_token(self.request)
        return token.workspace_id if token else None

    @extend_schema(responses={200: UnreadCountSerializer, **error_responses(401)})
    @action(detail=False, methods=["get"], url_path="unread-count", pagination_class=None)
    def unread_count(self, request):
        """How many of the caller's notifications are unread."""
        count = selectors.notification_unread_count(
            user_id=request.user.pk, workspace_id=self._workspace_id()
        )
        return Response({"unread": count})

    @extend_schema(
        request=None, responses={200: NotificationSerializer, **error_responses(401, 404)}
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark one notification read (already read: unchanged)."""
        notification = services.notification_mark_read(notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses={200: ReadAllSerializer, **error_responses(401)})
    @action(detail=False, methods=["post"], url_path="read-all", pagination_class=None)
    def read_all(self, request):
        """Mark every unread notification of the caller read."""
        workspace_id = self._workspace_id()
        marked = services.notification_mark_all_read(user=request.user, workspace_id=workspace_id)
        unread = selectors.notification_unread_count(
            user_id=request.user.pk, workspace_id=workspace_id
        )
        return Response({"marked": marked, "unread": unread})


@extend_schema_view(
    list=extend_schema(
        responses={200: AlertRuleSerializer(many=True), **error_responses(400, 401)}
    ),
    retrieve=extend_schema(responses={200: AlertRuleSerializer, **error_responses(401, 404)}),
    create=extend_schema(
        request=AlertRuleSerializer,
        responses={201: AlertRuleCreatedSerializer, **error_responses(400, 401, 403)},
    ),
    update=extend_schema(
        responses={200: AlertRuleSerializer, **error_responses(400, 401, 403, 404)}
    ),
    partial_update=extend_schema(
        responses={200: AlertRuleSerializer, **error_responses(400, 401, 403, 404)}
    ),
    destroy=extend_schema(responses={204: None, **error_responses(401, 403, 404)}),
)
@extend_schema(tags=["alert-rules"])
class AlertRuleViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    """Saved bid filters that notify their owner of what they care about (conditions, digests,
    deadline reminders); viewers only read."""

    serializer_class = AlertRuleSerializer
    keyset_ordering = ("id",)

    def base_queryset(self):
        if self.action in ("feeds", "feed_revoke"):  # the rule's feeds, not its fields
            return AlertRule.objects.all()
        return selectors.alert_rule_list()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = serializer.validated_data.pop("workspace")
        require_role(
            request, workspace.pk, Membership.WRITER_ROLES, "Viewers cannot create alert rules."
        )
        rule_channels = serializer.validated_data.pop("channels", None)
        with transaction.atomic():
            rule = services.alert_rule_create(
                workspace_id=workspace.pk, owner=request.user, **serializer.validated_data
            )
            if rule_channels is not None:
                channels.alert_rule_channels_set(rule=rule, channels=rule_channels)
        location = request.build_absolute_uri(reverse("alertrule-detail", args=[rule.pk]))
        return Response(
            AlertRuleCreatedSerializer(rule, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    def update(self, request, *args, partial: bool = False, **kwargs):
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        workspace = changes.pop("workspace", None)
        if workspace is not None and workspace.pk != rule.workspace_id:
            raise exceptions.ValidationError({"workspace": ["a rule cannot change workspace"]})
        rule_channels = changes.pop("channels", None)
        with transaction.atomic():
            rule = services.alert_rule_update(rule=rule, **changes)
            if rule_channels is not None:
                channels.alert_rule_channels_set(rule=rule, channels=rule_channels)
        return Response(self.get_serializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        services.alert_rule_delete(rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- Feed tokens: /alert-rules/{id}/feeds/ ---------------------------------------------------

    @property
    def write_roles(self) -> tuple[str, ...]:
        """Any member who sees a rule may make it a feed (a feed shows what they see)."""
        if self.action in ("feeds", "feed_revoke"):
            return tuple(Membership.Role)
        return Membership.WRITER_ROLES

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: FeedTokenSerializer(many=True), **error_responses(401, 404)},
        description="The rule's feed tokens (prefixes only), revoked ones too, newest first.",
    )
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={201: FeedTokenCreatedSerializer, **error_responses(401, 404)},
        description=(
            "A new secret feed URL of the rule, Atom and RSS: the URLs are returned here only. "
            "Any member who sees the rule may make one."
        ),
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def feeds(self, request: Request, pk: str | None = None) -> Response:
        """List (GET) or create (POST) the rule's feed tokens."""
        rule = self.get_object()
        if request.method == "GET":
            tokens = selectors.feed_token_list(rule=rule)
            return Response(FeedTokenSerializer(tokens, many=True).data)
        user_id = request.user.pk
        if user_id is None:  # IsAuthenticated let nobody anonymous in: this narrows the type
            raise exceptions.NotAuthenticated()
        token, raw = services.feed_token_create(rule=rule, user_id=user_id)
        context = {**self.get_serializer_context(), "raw": raw}
        return Response(
            FeedTokenCreatedSerializer(token, context=context).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(401, 403, 404)},
        description=(
            "Revoke a feed token: its URLs answer 404 from now on. Its creator, or a member who "
            "may change the rule (not a viewer), may revoke it."
        ),
    )
    @action(detail=True, methods=["delete"], url_path=r"feeds/(?P<feed_id>[0-9]+)")
    def feed_revoke(self, request: Request, pk: str | None = None, feed_id: str = "") -> Response:
        rule = self.get_object()
        token = selectors.feed_token_list(rule=rule).filter(pk=feed_id).first()
        if token is None:
            raise exceptions.NotFound("No such feed token of this rule.")
        if token.created_by_id != request.user.pk:
            require_role(
                request,
                rule.workspace_id,
                Membership.WRITER_ROLES,
                "Viewers can revoke only the feed tokens they made.",
            )
        services.feed_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
