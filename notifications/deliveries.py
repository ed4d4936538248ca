"""What webhook and email deliveries share: a row per delivery, each attempt claimed by a
conditional UPDATE, failures retried with exponential backoff until dead, lost tasks re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import models
from django.db.models import F
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

DUE = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
SWEEP_BATCH = 1000


def backoff(*, attempts: int, base: float, cap: float | None = None) -> float:
    """`base * 2^(attempts-1)` seconds, at most `cap`."""
    delay = float(base * 2 ** (attempts - 1))
    return delay if cap is None else min(delay, cap)


def claim(model: type[models.Model], *, pk: int, lease_seconds: float) -> bool:
    """Count one attempt of a due delivery and lease it; False: not due, finished, or another
    worker has it (0 rows updated)."""
    now = timezone.now()
    return bool(
        model._default_manager.filter(
            pk=pk, status__in=DUE, next_attempt_at__lte=now + timedelta(seconds=1)
        ).update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=lease_seconds))
    )


def record(
    delivery: Delivery,
    *,
    error: str,
    final: bool,
    max_attempts: int,
    backoff_of: Callable[[int], float],
    fields: tuple[str, ...] = (),
) -> float | None:
    """Save an attempt's outcome: succeeded, dead (final error or out of attempts) or failed
    with the next attempt due after the backoff; the seconds until then, or None."""
    delivery.last_error = error[:2000]
    retry_in = None
    if not error:
        delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, timezone.now()
    elif final or delivery.attempts >= max_attempts:
        delivery.status = DeliveryStatus.DEAD
        logger.warning("%s %s is dead: %s", type(delivery).__name__, delivery.pk, error)
    else:
        retry_in = backoff_of(delivery.attempts)
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
    delivery.save(
        update_fields=["status", "last_error", "delivered_at", "next_attempt_at", *fields]
    )
    return retry_in


def overdue(model: type[models.Model], *, grace_seconds: float) -> list[int]:
    """Deliveries still due `grace_seconds` after their time: their task was lost."""
    since = timezone.now() - timedelta(seconds=grace_seconds)
    return list(
        model._default_manager.filter(status__in=DUE, next_attempt_at__lte=since)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
