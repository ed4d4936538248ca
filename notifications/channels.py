"""Apprise channels (Slack, Discord, Telegram, Microsoft Teams, ntfy, Matrix and the rest):
URLs judged by the SSRF guard at save and at send, one message per delivery row, sent by a task
with retries and a dead letter, like webhooks. Tasks are enqueued by name, so this module never
imports notifications.tasks. docs/notifications.md, "Channels".

Seam (issue 13): `channel_deliveries_create` is called by notifications.fanout.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from notifications import channel_guard, channel_urls, deliveries
from notifications.models import AlertRule, Channel, ChannelDelivery, Notification
from project.celery import app as celery_app

SEND_TASK = "notifications.channel_send"  # tasks.channel_send_task
TEST_TITLE = "Forest test message"
TEST_BODY = "This channel is set up: Forest notifications will arrive here."
CHANNEL_FIELDS = ("name", "url", "crawl_problems", "is_active")

# --- Channels ------------------------------------------------------------------------------------


def _checked(url: str) -> channel_urls.ChannelURL:
    try:
        return channel_urls.channel_url_check(url)
    except channel_urls.ChannelURLError as exc:
        raise ValidationError({"url": [str(exc)]}) from exc


def channel_create(
    *,
    workspace_id: int,
    owner: Any,
    name: str,
    url: str,
    crawl_problems: bool = False,
    is_active: bool = True,
) -> Channel:
    """Save a user's channel after the guard has judged every host its URL names."""
    parsed = _checked(url)
    return Channel.objects.create(
        workspace_id=workspace_id,
        owner=owner,
        name=name,
        url=parsed.url,
        service=parsed.service,
        display=parsed.display,
        crawl_problems=crawl_problems,
        is_active=is_active,
    )


def channel_update(*, channel: Channel, **changes: Any) -> Channel:
    """Change a channel's name, URL (judged again), crawl_problems or active flag."""
    fields = set()
    for name, value in changes.items():
        if name not in CHANNEL_FIELDS:
            raise ValidationError({name: ["cannot be changed"]})
        if name == "url":
            parsed = _checked(value)
            channel.url, channel.service, channel.display = (
                parsed.url,
                parsed.service,
                parsed.display,
            )
            fields |= {"url", "service", "display"}
        else:
            setattr(channel, name, value)
            fields.add(name)
    channel.save(update_fields=[*sorted(fields), "updated_at"])
    return channel


def channel_delete(*, channel: Channel) -> None:
    """Delete a channel with its deliveries; rules that used it simply lose it."""
    channel.delete()


def alert_rule_channels_set(*, rule: AlertRule, channels: Iterable[Channel]) -> None:
    """Make `channels` the rule's: only its owner's own active channels in its workspace."""
    chosen = list(channels)
    foreign = [
        c.pk
        for c in chosen
        if c.owner_id != rule.owner_id or c.workspace_id != rule.workspace_id or not c.is_active
    ]
    if foreign:
        raise ValidationError(
            {"channels": [f"not an active channel of the rule's owner in its workspace: {foreign}"]}
        )
    rule.channels.set(chosen)


# --- Deliveries ----------------------------------------------------------------------------------


def channel_deliveries_create(
    *, channels: Iterable[Channel], notification: Notification | None, title: str, body: str
) -> list[ChannelDelivery]:
    """Store one delivery per active channel; their tasks are enqueued on commit."""
    made = ChannelDelivery.objects.bulk_create(
        ChannelDelivery(
            workspace_id=channel.workspace_id,
            channel=channel,
            notification=notification,
            title=title[:400],
            body=body,
        )
        for channel in channels
        if channel.is_active
    )
    for delivery in made:
        # robust: a broker hiccup must not undo the stored notification; the sweep re-sends.
        transaction.on_commit(functools.partial(channel_enqueue, delivery.pk), robust=True)
    return made


def channel_test(*, channel: Channel) -> ChannelDelivery:
    """Send a test message to the channel (a delivery like any other)."""
    if not channel.is_active:
        raise ValidationError({"is_active": ["the channel is not active"]})
    with transaction.atomic():
        [delivery] = channel_deliveries_create(
            channels=[channel], notification=None, title=TEST_TITLE, body=TEST_BODY
        )
    return delivery


def channel_enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Send the delivery's task to the broker (by name)."""
    celery_app.send_task(SEND_TASK, args=[delivery_id], countdown=countdown)


def channel_backoff(*, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones (exponential, capped)."""
    return deliveries.backoff(
        attempts=attempts,
        base=settings.CHANNEL_BACKOFF_SECONDS,
        cap=settings.CHANNEL_BACKOFF_MAX_SECONDS,
    )


class _Captured(logging.Handler):
    """Apprise's warnings and errors of this thread: why a message was not delivered."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _apprise_errors() -> Iterator[list[str]]:
    handler, logger = _Captured(), logging.getLogger("apprise")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _send(url: str, *, title: str, body: str) -> tuple[str, bool]:
    """Send one message through Apprise under the guard: (error or "", whether final)."""
    try:
        parsed = channel_urls.channel_url_check(url)  # judged again: DNS may have changed
    except channel_urls.ChannelURLError as exc:
        return str(exc), True
    plugin = parsed.plugin
    plugin.socket_connect_timeout = settings.CHANNEL_TIMEOUT_SECONDS
    plugin.socket_read_timeout = settings.CHANNEL_TIMEOUT_SECONDS
    with (
        _apprise_errors() as errors,
        channel_guard.guarded(channel_urls.channel_allowlist()) as state,
    ):
        try:
            delivered = plugin.notify(body=body, title=title)
        except Exception as exc:
            delivered, errors[:] = False, [*errors, f"{type(exc).__name__}: {exc}"]
    if state.refusals:
        return f"refused: {state.refusals[0].reason}", True
    if delivered:
        return "", False
    return "; ".join(errors) or "not delivered", False


def channel_send(*, delivery_id: int) -> float | None:
    """Make one attempt of a due delivery; the seconds until the next one, or None when done.

    Claimed by a conditional UPDATE (0 rows: not due, finished, or another worker has it). A
    guard refusal, or a URL no longer allowed, is final (dead at once); other failures retry
    with backoff until CHANNEL_MAX_ATTEMPTS, then the delivery is dead. Errors never hold the
    URL's secrets."""
    lease = settings.CHANNEL_TIMEOUT_SECONDS * 4
    if not deliveries.claim(ChannelDelivery, pk=delivery_id, lease_seconds=lease):
        return None
    delivery = ChannelDelivery.objects.select_related("channel").get(pk=delivery_id)
    channel = delivery.channel
    if channel.is_active:
        error, final = _send(channel.url, title=delivery.title, body=delivery.body)
    else:
        error, final = "the channel is not active", True
    error = channel_urls.redact(error, url=channel.url, display=channel.display)
    return deliveries.record(
        delivery,
        error=error,
        final=final,
        max_attempts=settings.CHANNEL_MAX_ATTEMPTS,
        backoff_of=lambda attempts: channel_backoff(attempts=attempts),
    )


def channel_sweep() -> list[int]:
    """Re-enqueue deliveries whose task was lost (due for CHANNEL_SWEEP_GRACE_SECONDS); ids."""
    ids = deliveries.overdue(ChannelDelivery, grace_seconds=settings.CHANNEL_SWEEP_GRACE_SECONDS)
    for delivery_id in ids:
        channel_enqueue(delivery_id)
    return ids
