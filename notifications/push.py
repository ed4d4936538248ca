"""Live push of notifications to a user's sockets (crawls.realtime), after commit."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from crawls import realtime
from notifications import selectors
from notifications.models import Notification

MESSAGE_TYPE = "notification.message"  # NotificationConsumer.notification_message


def notification_message(notification: Notification) -> dict[str, Any]:
    """The wire form of a notification (WebSocket; the API's NotificationSerializer agrees)."""
    return {
        "id": notification.pk,
        "workspace": notification.workspace_id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "link": notification.link,
        "crawl": notification.crawl_id,
        "rule": notification.rule_id,
        "count": notification.count,
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
        "created_at": notification.created_at.isoformat(),
        "updated_at": notification.updated_at.isoformat(),
    }


def notification_push(*, user_id: int, notification: Notification | None = None) -> None:
    """Send a user's sockets the notification (None: only the count changed) and unread count."""
    realtime.publish(
        [realtime.notifications_group(user_id)],
        {
            "type": MESSAGE_TYPE,
            "notification": notification_message(notification) if notification else None,
            "unread": selectors.notification_unread_count(user_id=user_id),
        },
    )


def push_on_commit(notification: Notification) -> None:
    """Push `notification` to its recipient once the current transaction commits."""
    transaction.on_commit(
        functools.partial(
            notification_push, user_id=notification.recipient_id, notification=notification
        )
    )
