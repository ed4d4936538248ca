"""Deadline reminders (docs/notifications.md, "Reminders"): for each active rule with
remind_days, the bids of its workspace its filter selects whose deadline falls between now and
now + remind_days, live (removed_at None) and not cancelled, are recorded with ONE
INSERT ... ON CONFLICT DO NOTHING RETURNING per rule into notifications_reminder (unique rule,
bid, deadline: once per bid per rule per deadline, a moved deadline reminds again; overlapping
runs insert each row once). The rows a run inserted make one reminder notification per rule.
The beat task notifications.reminders_send runs this."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from crawls.filters import BidFilter
from crawls.models import Bid
from notifications import fanout, messages, push, selectors
from notifications.models import AlertRule, Notification, Reminder

logger = logging.getLogger(__name__)


def reminders_send(*, now: dt.datetime | None = None) -> list[int]:
    """Remind every reminding rule of its deadlines due soon: the notification ids made."""
    now = now or timezone.now()
    sent = []
    for rule in selectors.alert_rules_reminding():
        with transaction.atomic():
            inserted = reminder_insert(rule=rule, now=now)
            if inserted:
                sent.append(_reminder_notify(rule=rule, inserted=inserted, now=now).pk)
    return sent


# Stand-ins for the window's bounds in a rule's compiled statement, replaced at each run.
_FROM = dt.datetime(1901, 1, 1, tzinfo=dt.UTC)
_TO = dt.datetime(1902, 2, 2, tzinfo=dt.UTC)
# Filters relative to the time they are compiled at: never reused from the cache.
_TIME_RELATIVE = frozenset({"closing_within_days"})


@functools.lru_cache(maxsize=4096)
def _compiled(
    rule_id: int, workspace_id: int, filter_json: str
) -> tuple[str, tuple[Any, ...], int, int] | None:
    """A rule's INSERT ... SELECT with the window's bounds as stand-ins, and their positions
    among the parameters: building a BidFilter costs more than the statement, and beat's worker
    runs the same rules every few minutes (a changed rule has another key)."""
    base = Bid.objects.filter(
        workspace_id=workspace_id, deadline__gte=_FROM, deadline__lte=_TO, removed_at=None
    ).exclude(status=Bid.Status.CANCELLED)
    filterset = BidFilter(selectors.filter_querydict(json.loads(filter_json)), queryset=base)
    if not filterset.is_valid():  # saved before BidFilter changed: never widen it silently
        logger.warning("alert rule %s has an invalid filter: %s", rule_id, filterset.errors)
        return None
    sql, params = filterset.qs.order_by().values_list("pk", "deadline").query.sql_with_params()
    table = Reminder._meta.db_table
    statement = (
        f"INSERT INTO {table} (rule_id, bid_id, deadline, created_at) "  # noqa: S608 - ours
        f"SELECT %s, m.id, m.deadline, %s FROM ({sql}) AS m(id, deadline) "
        "ON CONFLICT (rule_id, bid_id, deadline) DO NOTHING RETURNING id, bid_id, deadline"
    )
    values = (rule_id, None, *params)
    return statement, values, values.index(_FROM), values.index(_TO)


def reminder_statement(*, rule: AlertRule, now: dt.datetime) -> tuple[str, list[Any]] | None:
    """The rule's INSERT ... SELECT at `now` (None: its saved filter no longer validates)."""
    assert rule.remind_days is not None  # noqa: S101 - alert_rules_reminding's promise
    key = json.dumps(rule.filter, sort_keys=True)
    if _TIME_RELATIVE & set(rule.filter):
        found = _compiled.__wrapped__(rule.pk, rule.workspace_id, key)
    else:
        found = _compiled(rule.pk, rule.workspace_id, key)
    if found is None:
        return None
    statement, values, start, end = found
    params = list(values)
    params[1] = now
    params[start] = now
    params[end] = now + dt.timedelta(days=rule.remind_days)
    return statement, params


def reminder_insert(*, rule: AlertRule, now: dt.datetime) -> list[tuple[int, int, dt.datetime]]:
    """Record the rule's reminders due now: (reminder id, bid id, deadline) of those new."""
    statement = reminder_statement(rule=rule, now=now)
    if statement is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return sorted(cursor.fetchall(), key=lambda row: (row[2], row[1]))


def _reminder_notify(
    *, rule: AlertRule, inserted: list[tuple[int, int, dt.datetime]], now: dt.datetime
) -> Notification:
    count = len(inserted)
    shown = inserted[: messages.LISTED_MAX]
    detailed = inserted[: messages.PAYLOAD_MAX]
    titles = dict(
        Bid.objects.filter(pk__in=[bid for _, bid, _ in detailed]).values_list("pk", "title")
    )
    lines = [
        f"- {titles.get(bid, '')} (#{bid}) closes {messages.deadline_text(deadline)}"
        for _, bid, deadline in shown
    ]
    if count > len(shown):
        lines.append(f"and {count - len(shown)} more")
    link = f"{reverse('crawls:bids')}?" + urlencode(
        {**rule.filter, "closing_within_days": rule.remind_days}, doseq=True
    )
    notification = Notification.objects.create(
        workspace_id=rule.workspace_id,
        recipient_id=rule.owner_id,
        kind=Notification.Kind.REMINDER,
        rule=rule,
        count=count,
        title=f"{rule.name}: {messages.plural(count, 'deadline')} within "
        f"{messages.plural(rule.remind_days or 0, 'day')}",
        body=f"Bids matching “{rule.name}” close soon:\n" + "\n".join(lines),
        link=link,
        created_at=now,
        updated_at=now,
    )
    Reminder.objects.filter(pk__in=[pk for pk, _, _ in inserted]).update(notification=notification)
    push.push_on_commit(notification)
    payload = {
        "event": "alert.reminder",
        "workspace": rule.workspace_id,
        "rule": {"id": rule.pk, "name": rule.name},
        "notification": notification.pk,
        "count": count,
        "reminders": [
            {"bid": bid, "title": titles.get(bid), "deadline": deadline.isoformat()}
            for _, bid, deadline in detailed
        ],
        "link": fanout.absolute(link),
    }
    fanout.alert_fanout(rule=rule, notification=notification, created=True, webhook_payload=payload)
    return notification
