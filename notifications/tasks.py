"""Celery adapters of notifications: each takes ids and calls one service. Services enqueue
these by name (webhooks.DELIVER_TASK, emails.SEND_TASK, channels.SEND_TASK): nothing imports
this module back."""

from celery import shared_task

from notifications import channels, digests, emails, reminders, webhooks


@shared_task(name="notifications.webhook_deliver")
def webhook_deliver_task(delivery_id: int) -> float | None:
    """One attempt of a webhook delivery; schedules the next one after a transient failure."""
    retry_in = webhooks.webhook_deliver(delivery_id=delivery_id)
    if retry_in is not None:
        webhook_deliver_task.apply_async((delivery_id,), countdown=retry_in)
    return retry_in


@shared_task(name="notifications.webhook_sweep")
def webhook_sweep_task() -> list[int]:
    """Re-enqueue overdue webhook deliveries (beat, every WEBHOOK_SWEEP_INTERVAL seconds)."""
    return webhooks.webhook_sweep()


@shared_task(name="notifications.email_send")
def email_send_task(delivery_id: int) -> float | None:
    """One attempt of an alert email; schedules the next one after an SMTP error."""
    retry_in = emails.email_send(delivery_id=delivery_id)
    if retry_in is not None:
        email_send_task.apply_async((delivery_id,), countdown=retry_in)
    return retry_in


@shared_task(name="notifications.email_sweep")
def email_sweep_task() -> list[int]:
    """Re-enqueue overdue alert emails (beat, every EMAIL_SWEEP_INTERVAL seconds)."""
    return emails.email_sweep()


@shared_task(name="notifications.channel_send")
def channel_send_task(delivery_id: int) -> float | None:
    """One attempt of an Apprise channel message; schedules the next one after a failure."""
    retry_in = channels.channel_send(delivery_id=delivery_id)
    if retry_in is not None:
        channel_send_task.apply_async((delivery_id,), countdown=retry_in)
    return retry_in


@shared_task(name="notifications.channel_sweep")
def channel_sweep_task() -> list[int]:
    """Re-enqueue overdue channel deliveries (beat, every CHANNEL_SWEEP_INTERVAL seconds)."""
    return channels.channel_sweep()


@shared_task(name="notifications.digest_send")
def digest_send_task() -> list[int]:
    """Send the due hourly and daily digests (beat, every DIGEST_SEND_INTERVAL seconds)."""
    return digests.digest_send()


@shared_task(name="notifications.reminders_send")
def reminders_send_task() -> list[int]:
    """Remind rules of deadlines due soon, once each (beat, every REMINDERS_SEND_INTERVAL s)."""
    return reminders.reminders_send()
