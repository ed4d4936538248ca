"""Apprise channels (Slack, Discord, Telegram, Microsoft Teams, ntfy, Matrix and the rest):
URLs judged by the SSRF guard at save and at send, one message per delivery row, sent by a task
with retries and a dead letter, like webhooks. docs/notifications.md, "Channels".

Seam (issue 13): `channel_deliveries_create` is called by notifications.fanout.
"""

from __future__ import annotations

from collections.abc import Iterable

from notifications.models import Channel, ChannelDelivery, Notification


def channel_deliveries_create(
    *, channels: Iterable[Channel], notification: Notification, title: str, body: str
) -> list[ChannelDelivery]:
    """Store one delivery per active channel; their tasks are enqueued on commit."""
    return []
