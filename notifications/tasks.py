"""Celery adapters of notifications: each takes ids and calls one service."""

from celery import shared_task

from notifications import services


@shared_task(name="notifications.webhook_deliver")
def webhook_deliver_task(delivery_id: int) -> float | None:
    """One attempt of a webhook delivery; schedules the next one after a transient failure."""
    retry_in = services.webhook_deliver(delivery_id=delivery_id)
    if retry_in is not None:
        webhook_deliver_task.apply_async((delivery_id,), countdown=retry_in)
    return retry_in


@shared_task(name="notifications.webhook_sweep")
def webhook_sweep_task() -> list[int]:
    """Re-enqueue overdue webhook deliveries (beat, every WEBHOOK_SWEEP_INTERVAL seconds)."""
    return services.webhook_sweep()
