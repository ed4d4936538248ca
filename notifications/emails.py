"""Alert emails: stored as an EmailDelivery row with the notification, sent by a Celery task
(enqueued by name) so a slow mail server never slows the crawl that matched; SMTP errors retried
with backoff until EMAIL_MAX_ATTEMPTS, lost tasks re-sent. docs/notifications.md, "Email".
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from notifications import deliveries
from notifications.models import EmailDelivery, Notification
from project.celery import app as celery_app

SEND_TASK = "notifications.email_send"  # tasks.email_send_task


def email_delivery_create(
    *, notification: Notification, to: str, subject: str, body: str
) -> EmailDelivery:
    """Store an email to send; its task is enqueued when the transaction commits."""
    delivery = EmailDelivery.objects.create(
        workspace_id=notification.workspace_id,
        notification=notification,
        to=to,
        subject=subject[:400],
        body=body,
    )
    # robust: a broker hiccup must not undo the stored notification; the sweep re-sends.
    transaction.on_commit(functools.partial(email_enqueue, delivery.pk), robust=True)
    return delivery


def email_enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Send the email's task to the broker (by name)."""
    celery_app.send_task(SEND_TASK, args=[delivery_id], countdown=countdown)


def email_backoff(*, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones (doubling each time)."""
    return deliveries.backoff(attempts=attempts, base=settings.EMAIL_BACKOFF_SECONDS)


def email_send(*, delivery_id: int) -> float | None:
    """Make one attempt of a due email; the seconds until the next one, or None when done.

    SMTP and connection errors (OSError) retry with backoff until EMAIL_MAX_ATTEMPTS; any other
    error (a message the backend cannot send) is dead at once.
    """
    lease = settings.EMAIL_TIMEOUT * 2
    if not deliveries.claim(EmailDelivery, pk=delivery_id, lease_seconds=lease):
        return None
    delivery = EmailDelivery.objects.get(pk=delivery_id)
    error, final = "", False
    try:
        send_mail(delivery.subject, delivery.body, settings.NOTIFY_FROM_EMAIL, [delivery.to])
    except OSError as exc:  # smtplib.SMTPException, refused, timed out
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        error, final = f"{type(exc).__name__}: {exc}", True
    return deliveries.record(
        delivery,
        error=error,
        final=final,
        max_attempts=settings.EMAIL_MAX_ATTEMPTS,
        backoff_of=lambda attempts: email_backoff(attempts=attempts),
    )


def email_sweep() -> list[int]:
    """Re-enqueue emails whose task was lost (due for EMAIL_SWEEP_GRACE_SECONDS); ids."""
    ids = deliveries.overdue(EmailDelivery, grace_seconds=settings.EMAIL_SWEEP_GRACE_SECONDS)
    for delivery_id in ids:
        email_enqueue(delivery_id)
    return ids
