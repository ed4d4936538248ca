"""Webhook deliveries: URLs judged by the crawler's SSRF guard, one signed POST per attempt,
retried with backoff until dead, lost tasks re-sent. Tasks are enqueued by name, so this module
never imports notifications.tasks. docs/notifications.md, "Webhooks".
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
from django.conf import settings
from django.db import transaction

from crawls.engine import guard
from notifications import deliveries
from notifications.models import AlertRule, Notification, WebhookDelivery
from project.celery import app as celery_app

DELIVER_TASK = "notifications.webhook_deliver"  # tasks.webhook_deliver_task
SIGNATURE_HEADER = "X-Forest-Signature"
TIMESTAMP_HEADER = "X-Forest-Timestamp"


# --- Validation ----------------------------------------------------------------------------------


def webhook_allowlist() -> guard.Allowlist:
    """The crawler's allowlist (CRAWL_ALLOWLIST, the demo board): webhooks obey the same guard."""
    return guard.Allowlist.parse(settings.CRAWL_ALLOWLIST)


def webhook_url_refusal(*, url: str) -> str | None:
    """Why the guard refuses a webhook URL now (literal or resolved address), else None.

    A name that does not resolve now is accepted: delivery judges it again when it connects.
    """
    return guard.url_refusal(url, allowlist=webhook_allowlist())


# --- Enqueueing ----------------------------------------------------------------------------------


def webhook_delivery_create(
    *, rule: AlertRule, notification: Notification, payload: dict[str, Any]
) -> WebhookDelivery:
    """Store a delivery of `payload` to the rule's URL; its task is enqueued on commit."""
    delivery = WebhookDelivery.objects.create(
        workspace_id=rule.workspace_id,
        rule=rule,
        notification=notification,
        url=rule.webhook_url,
        payload=payload,
    )
    # robust: a broker hiccup must not undo the stored notification; the sweep re-sends.
    transaction.on_commit(functools.partial(webhook_enqueue, delivery.pk), robust=True)
    return delivery


def webhook_enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Send the delivery's task to the broker (by name)."""
    celery_app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)


# --- Attempts ------------------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with the rule's secret over `<timestamp>.<raw body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_backoff(*, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones (exponential, capped)."""
    return deliveries.backoff(
        attempts=attempts,
        base=settings.WEBHOOK_BACKOFF_SECONDS,
        cap=settings.WEBHOOK_BACKOFF_MAX_SECONDS,
    )


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    allowlist = webhook_allowlist()
    guard.check_url(url, allowlist=allowlist)
    timeout = aiohttp.ClientTimeout(total=settings.WEBHOOK_TIMEOUT_SECONDS)
    connector = guard.guarded_connector(allowlist=allowlist)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.post(url, data=body, headers=headers, allow_redirects=False) as response,
    ):
        return response.status


def webhook_deliver(*, delivery_id: int) -> float | None:
    """Make one attempt of a due delivery; the seconds until the next one, or None when done.

    The attempt is claimed by a conditional UPDATE (0 rows: not due, finished, or another
    worker has it). A guard refusal is final (dead at once); other failures retry with backoff
    until WEBHOOK_MAX_ATTEMPTS, then the delivery is dead (kept for the admin to see).
    """
    lease = settings.WEBHOOK_TIMEOUT_SECONDS * 2
    if not deliveries.claim(WebhookDelivery, pk=delivery_id, lease_seconds=lease):
        return None
    delivery = WebhookDelivery.objects.select_related("rule").get(pk=delivery_id)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": settings.CRAWL_USER_AGENT,
        "X-Forest-Event": str(delivery.payload.get("event", "")),
        "X-Forest-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(
            secret=delivery.rule.webhook_secret, timestamp=timestamp, body=body
        ),
    }
    status_code, error, final = None, "", False
    try:
        status_code = asyncio.run(_post(delivery.url, body, headers))
    except Exception as exc:
        refusal = guard.refusal_of(exc)
        final = refusal is not None
        error = f"refused: {refusal.reason}" if refusal else f"{type(exc).__name__}: {exc}"
    else:
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    delivery.response_status = status_code
    return deliveries.record(
        delivery,
        error=error,
        final=final,
        max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
        backoff_of=lambda attempts: webhook_backoff(attempts=attempts),
        fields=("response_status",),
    )


def webhook_sweep() -> list[int]:
    """Re-enqueue deliveries whose task was lost (due for WEBHOOK_SWEEP_GRACE_SECONDS); ids."""
    ids = deliveries.overdue(WebhookDelivery, grace_seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    for delivery_id in ids:
        webhook_enqueue(delivery_id)
    return ids
