"""API representations of notifications and alert rules."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from rest_framework import serializers

from crawls.api.auth import workspaces_of
from notifications import channel_urls, conditions, services, webhooks
from notifications.models import AlertRule, Channel, ChannelDelivery, FeedToken, Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "workspace",
            "kind",
            "title",
            "body",
            "link",
            "crawl",
            "rule",
            "count",
            "read_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class ReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="Notifications marked read now.")
    unread = serializers.IntegerField()


class WorkspaceField(serializers.PrimaryKeyRelatedField):
    """A workspace of the caller's (of the token's, with a token)."""

    def get_queryset(self):
        return workspaces_of(self.context.get("request"))


class ChannelIdsField(serializers.PrimaryKeyRelatedField[Channel]):
    """Channels of the caller's workspaces (the service checks owner, workspace, active)."""

    def get_queryset(self) -> QuerySet[Channel]:
        return Channel.objects.filter(workspace__in=workspaces_of(self.context.get("request")))  # type: ignore[no-untyped-call]


class AlertRuleSerializer(serializers.ModelSerializer):
    workspace = WorkspaceField()
    filter = serializers.JSONField(
        required=False,
        help_text='Bid filter parameters as GET /bids/ takes them, e.g. {"search": "road", '
        '"views_min": 10}; not workspace, crawl or state.',
    )
    channels = ChannelIdsField(
        many=True,
        required=False,
        help_text="Apprise channels (ids) to tell too: the rule owner's own active channels.",
    )

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "workspace",
            "owner",
            "name",
            "filter",
            "webhook_url",
            "email",
            "channels",
            "is_active",
            # What the rule cares about, how it is delivered (docs/notifications.md).
            *services.RULE_OPTIONS,
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]
        extra_kwargs = {
            "conditions": {"help_text": "new, changed, removed, cancelled, amount_changed, "
                           "deadline_moved (default: new and changed)."},
            "changed_fields": {"help_text": "Condition `changed`: only these bid fields "
                               "(columns, `removed`, `extra.<key>`); empty: any."},
            "amount_change_pct": {"help_text": "Condition `amount_changed`: the least change "
                                  "in percent (above 0, at most 10000); null: any change."},
            "remind_days": {"help_text": "Remind of deadlines within this many days (1 to "
                            "365); null: no reminders."},
        }  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = {name: attrs[name] for name in services.RULE_OPTIONS if name in attrs}
        errors = conditions.rule_option_errors(**given)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def validate_filter(self, value):
        errors = services.alert_filter_errors(filter=value)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_webhook_url(self, value: str) -> str:
        refusal = webhooks.webhook_url_refusal(url=value) if value else None
        if refusal:
            raise serializers.ValidationError(f"refused: {refusal}")
        return value


class AlertRuleCreatedSerializer(AlertRuleSerializer):
    webhook_secret = serializers.CharField(
        read_only=True,
        help_text="Signs webhook deliveries (X-Forest-Signature). Shown here only: keep it.",
    )

    class Meta(AlertRuleSerializer.Meta):
        fields = [*AlertRuleSerializer.Meta.fields, "webhook_secret"]


class FeedTokenSerializer(serializers.ModelSerializer[FeedToken]):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = FeedToken
        fields = ["id", "rule", "prefix", "created_by", "created_at", "revoked_at", "is_active"]
        read_only_fields = fields


class FeedTokenCreatedSerializer(FeedTokenSerializer):
    atom_url = serializers.SerializerMethodField(
        help_text="The Atom 1.0 feed; the secret is in it. Shown here only: keep it."
    )
    rss_url = serializers.SerializerMethodField(help_text="The RSS 2.0 feed (same secret).")

    class Meta(FeedTokenSerializer.Meta):
        fields = [*FeedTokenSerializer.Meta.fields, "atom_url", "rss_url"]
        read_only_fields = fields

    def _url(self, name: str) -> str:
        path = reverse(name, args=[self.context["raw"]])
        return str(self.context["request"].build_absolute_uri(path))

    def get_atom_url(self, obj: FeedToken) -> str:
        return self._url("notifications:feed_atom")

    def get_rss_url(self, obj: FeedToken) -> str:
        return self._url("notifications:feed_rss")


# --- Channels ------------------------------------------------------------------------------------


class ChannelDeliverySerializer(serializers.ModelSerializer[ChannelDelivery]):
    class Meta:
        model = ChannelDelivery
        fields = [
            "id",
            "channel",
            "notification",
            "title",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    workspace = WorkspaceField()
    url = serializers.CharField(
        write_only=True,
        max_length=channel_urls.URL_MAX_LENGTH,
        help_text="The Apprise URL, e.g. ntfys://ntfy.example.org/topic. Write-only: it holds "
        "secrets; `display` shows it redacted.",
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "workspace",
            "owner",
            "name",
            "url",
            "service",
            "display",
            "crawl_problems",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "service", "display", "created_at", "updated_at"]
