"""Admin of notifications, alert rules, channels and their deliveries (scoped like crawls' admin).

Notifications and deliveries are written by the matcher: read-only, bounded changelists. Alert
rules are edited here but validated by the services (the API's rules). Secrets are never shown.
"""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from crawls.admin.base import BigTableAdmin, ScopedRelatedFilter, WorkspaceScopedAdmin
from crawls.forms import BoundedJSONField
from notifications import conditions, services, webhooks
from notifications.models import (
    AlertRule,
    Channel,
    ChannelDelivery,
    EmailDelivery,
    Notification,
    WebhookDelivery,
)


class AlertRuleForm(forms.ModelForm):
    webhook_url = forms.URLField(required=False, max_length=2000, assume_scheme="https")
    filter = BoundedJSONField(required=False, help_text="BidFilter query parameters.")

    class Meta:
        model = AlertRule
        fields = [
            "workspace", "owner", "name", "filter", "webhook_url", "email", "is_active",
            *services.RULE_OPTIONS,
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        errors = services.alert_filter_errors(filter=cleaned.get("filter", {}))
        for name, messages in errors.items():
            self.add_error("filter", f"{name}: {' '.join(messages)}")
        options = {name: self.cleaned_data.get(name) for name in services.RULE_OPTIONS}
        for name, messages in conditions.rule_option_errors(**options).items():
            self.add_error(name if name in self.fields else None, messages)
        url = cleaned.get("webhook_url")
        refusal = webhooks.webhook_url_refusal(url=url) if url else None
        if refusal:
            self.add_error("webhook_url", f"refused: {refusal}")
        return cleaned


@admin.register(AlertRule)
class AlertRuleAdmin(WorkspaceScopedAdmin):
    form = AlertRuleForm
    list_display = ["name", "workspace", "owner", "delivery", "is_active", "created_at"]
    list_filter = ["is_active", "delivery", ("workspace", ScopedRelatedFilter)]
    list_select_related = ["workspace", "owner"]
    raw_id_fields = ["owner"]
    search_fields = ["name"]
    list_per_page = 50

    def save_model(self, request, obj, form, change):
        if not obj.webhook_secret:
            obj.webhook_secret = secrets.token_hex(32)
        super().save_model(request, obj, form, change)


class _ScopedBigTable(BigTableAdmin, WorkspaceScopedAdmin):
    """Read-only, capped counts, rows of the staff user's workspaces."""


@admin.register(Notification)
class NotificationAdmin(_ScopedBigTable):
    list_display = ["title", "kind", "recipient", "workspace", "count", "read_at", "created_at"]
    list_filter = ["kind", ("workspace", ScopedRelatedFilter)]
    list_select_related = ["recipient", "workspace"]
    raw_id_fields = ["recipient", "crawl", "rule"]
    list_per_page = 50


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ScopedBigTable):
    list_display = ["pk", "rule", "status", "attempts", "response_status", "next_attempt_at"]
    list_filter = ["status", ("workspace", ScopedRelatedFilter)]
    list_select_related = ["rule"]
    raw_id_fields = ["rule", "notification"]
    list_per_page = 50


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(_ScopedBigTable):
    list_display = ["pk", "to", "subject", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", ("workspace", ScopedRelatedFilter)]
    raw_id_fields = ["notification"]
    list_per_page = 50


@admin.register(Channel)
class ChannelAdmin(WorkspaceScopedAdmin):
    """Channels are added through the API or the dashboard (their URL is judged there and never
    shown): here only the redacted display, and the flags."""

    fields = ["workspace", "owner", "name", "service", "display", "crawl_problems", "is_active"]
    readonly_fields = ["workspace", "owner", "service", "display"]
    list_display = ["name", "service", "display", "owner", "workspace", "is_active"]
    list_filter = ["service", "is_active", ("workspace", ScopedRelatedFilter)]
    list_select_related = ["workspace", "owner"]
    search_fields = ["name"]
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ChannelDelivery)
class ChannelDeliveryAdmin(_ScopedBigTable):
    list_display = ["pk", "channel", "title", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", ("workspace", ScopedRelatedFilter)]
    list_select_related = ["channel"]
    raw_id_fields = ["channel", "notification"]
    list_per_page = 50
