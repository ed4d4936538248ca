"""Where a notification goes beside the user's in-app list: the rule's email and webhook, the
rule's Apprise channels; for a crawl problem, the recipients' emails and their channels that
asked for crawl problems. Each is a stored delivery whose task is enqueued on commit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from notifications import channels, emails, webhooks
from notifications.models import AlertRule, Channel, Notification


def absolute(link: str) -> str:
    """A dashboard link as emails, webhooks and channels give it (NOTIFY_SITE_URL in front)."""
    return f"{settings.NOTIFY_SITE_URL.rstrip('/')}{link}"


def alert_fanout(
    *,
    rule: AlertRule,
    notification: Notification,
    created: bool,
    webhook_payload: dict[str, Any] | None,
) -> None:
    """Deliver a rule's notification: email and channels when it is created (later batches of
    the same crawl update it in place), the webhook with every payload given."""
    if created and rule.email:
        emails.email_delivery_create(
            notification=notification,
            to=rule.email,
            subject=f"[Forest] {notification.title}",
            body=f"{notification.body}\n\n{absolute(notification.link)}\n",
        )
    if created:
        channels.channel_deliveries_create(
            channels=rule.channels.filter(is_active=True),
            notification=notification,
            title=notification.title,
            body=f"{notification.body}\n\n{absolute(notification.link)}",
        )
    if rule.webhook_url and webhook_payload is not None:
        webhooks.webhook_delivery_create(
            rule=rule, notification=notification, payload=webhook_payload
        )


def crawl_problem_fanout(*, notification: Notification) -> None:
    """A failed or degraded crawl told to a manager: their channels that asked for crawl
    problems (Channel.crawl_problems)."""
    mine = Channel.objects.filter(
        workspace_id=notification.workspace_id,
        owner_id=notification.recipient_id,
        is_active=True,
        crawl_problems=True,
    )
    channels.channel_deliveries_create(
        channels=mine,
        notification=notification,
        title=notification.title,
        body=f"{notification.body}\n\n{absolute(notification.link)}",
    )
