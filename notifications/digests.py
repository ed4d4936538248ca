"""Digests (docs/notifications.md, "Digests"): an hourly or daily rule's matches wait in the
AlertMatch ledger (digested_at None) and go out as ONE alert_digest notification per rule once
its period has passed since its last digest (or its creation). The beat task
notifications.digest_send runs this; concurrent runs send each digest once (the rule's row is
locked, SKIP LOCKED, and its due time and waiting matches are read again under the lock)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from notifications import fanout, messages, push
from notifications.models import AlertMatch, AlertRule, Notification

PERIODS = {
    AlertRule.Delivery.HOURLY: dt.timedelta(hours=1),
    AlertRule.Delivery.DAILY: dt.timedelta(days=1),
}


def digest_due(rule: AlertRule, *, now: dt.datetime) -> bool:
    """A digest rule whose period has passed since its last digest (or its creation); a rule
    switched to immediate delivery sends what still waits at once."""
    period = PERIODS.get(AlertRule.Delivery(rule.delivery))
    if period is None:
        return True
    return (rule.digest_sent_at or rule.created_at) + period <= now


def digest_send(*, now: dt.datetime | None = None) -> list[int]:
    """Send every due digest: the ids of the alert_digest notifications made."""
    now = now or timezone.now()
    waiting = (
        AlertMatch.objects.filter(digested_at=None)  # the partial index alertmatch_undigested
        .order_by("rule_id")
        .values_list("rule_id", flat=True)
        .distinct()
    )
    sent = []
    for rule_id in list(waiting):
        notification = _digest_one(rule_id=rule_id, now=now)
        if notification is not None:
            sent.append(notification.pk)
    return sent


def _digest_one(*, rule_id: int, now: dt.datetime) -> Notification | None:
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk=rule_id,
                is_active=True,
                owner__is_active=True,
                owner__memberships__workspace_id=F("workspace_id"),
            )
            .first()
        )
        if rule is None or not digest_due(rule, now=now):
            return None  # another run holds it, it is not due, or its owner left
        rows = list(
            AlertMatch.objects.filter(rule=rule, digested_at=None)
            .order_by("id")
            .values_list("id", "bid_id", "bid__title", "reasons", "changes", "crawl_id")
        )
        if not rows:
            return None  # another run sent them
        items = [messages.Item(*row[1:]) for row in rows]
        since = rule.digest_sent_at or rule.created_at
        count = len(items)
        period = "hourly" if rule.delivery == AlertRule.Delivery.HOURLY else "daily"
        link = f"{reverse('crawls:bids')}?" + urlencode(
            {**rule.filter, "changed_since": since.isoformat()}, doseq=True
        )
        notification = Notification.objects.create(
            workspace_id=rule.workspace_id,
            recipient_id=rule.owner_id,
            kind=Notification.Kind.ALERT_DIGEST,
            rule=rule,
            count=count,
            title=f"{rule.name}: {messages.plural(count, 'bid')} in the {period} digest",
            body=(
                f"Since {messages.deadline_text(since)}, {messages.plural(count, 'bid')} "
                f"matched “{rule.name}”:\n{messages.listing(items, count)}"
            ),
            link=link,
            created_at=now,
            updated_at=now,
        )
        AlertMatch.objects.filter(pk__in=[row[0] for row in rows]).update(digested_at=now)
        rule.digest_sent_at = now
        rule.save(update_fields=["digest_sent_at"])
        push.push_on_commit(notification)
        payload = {
            "event": "alert.digest",
            "workspace": rule.workspace_id,
            "rule": {"id": rule.pk, "name": rule.name},
            "notification": notification.pk,
            "count": count,
            "since": since.isoformat(),
            "matches": messages.payload_matches(items),
            "link": fanout.absolute(link),
        }
        fanout.alert_fanout(
            rule=rule, notification=notification, created=True, webhook_payload=payload
        )
    return notification
