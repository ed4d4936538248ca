"""/api/v1/channels/: the caller's own Apprise channels in their workspaces, a test message,
and each channel's recent deliveries. The URL is write-only (docs/notifications.md)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crawls.api.base import ScopedViewSetMixin
from crawls.api.schema import error_responses
from crawls.models import Membership
from notifications import channels, selectors
from notifications.models import Channel
from notifications.serializers import ChannelDeliverySerializer, ChannelSerializer


@extend_schema_view(
    list=extend_schema(responses={200: ChannelSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: ChannelSerializer, **error_responses(401, 404)}),
    create=extend_schema(responses={201: ChannelSerializer, **error_responses(400, 401)}),
    update=extend_schema(responses={200: ChannelSerializer, **error_responses(400, 401, 404)}),
    partial_update=extend_schema(
        responses={200: ChannelSerializer, **error_responses(400, 401, 404)}
    ),
    destroy=extend_schema(responses={204: None, **error_responses(401, 404)}),
)
@extend_schema(tags=["channels"])
class ChannelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet[Channel]):  # type: ignore[misc]
    """The caller's own notification channels (Slack, Discord, Telegram, Teams, ntfy, Matrix...
    through Apprise). Any member may keep channels: they are the member's own."""

    serializer_class = ChannelSerializer
    keyset_ordering = ("id",)
    write_roles = tuple(Membership.Role)  # one's own channels: no change to the workspace

    def base_queryset(self) -> QuerySet[Channel]:
        if getattr(self, "swagger_fake_view", False):
            return Channel.objects.none()
        return selectors.channel_list_for_user(user=self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        workspace = data.pop("workspace")
        channel = channels.channel_create(workspace_id=workspace.pk, owner=request.user, **data)
        location = request.build_absolute_uri(reverse("channel-detail", args=[channel.pk]))
        return Response(
            self.get_serializer(channel).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    def update(
        self, request: Request, *args: Any, partial: bool = False, **kwargs: Any
    ) -> Response:
        channel = self.get_object()
        serializer = self.get_serializer(channel, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        workspace = changes.pop("workspace", None)
        if workspace is not None and workspace.pk != channel.workspace_id:
            raise exceptions.ValidationError({"workspace": ["a channel cannot change workspace"]})
        channel = channels.channel_update(channel=channel, **changes)
        return Response(self.get_serializer(channel).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        channels.channel_delete(channel=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={202: ChannelDeliverySerializer, **error_responses(400, 401, 404)},
        description="Send a test message to the channel (a delivery like any other).",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        delivery = channels.channel_test(channel=self.get_object())
        return Response(ChannelDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={200: ChannelDeliverySerializer(many=True), **error_responses(401, 404)},
        description=f"The channel's latest {selectors.CHANNEL_DELIVERIES_SHOWN} deliveries, "
        "newest first: status, attempts, last error (never the URL's secrets).",
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        recent = selectors.channel_delivery_list(channel=self.get_object())
        return Response(ChannelDeliverySerializer(recent, many=True).data)
