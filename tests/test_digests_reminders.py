"""Delivery modes (immediate, hourly and daily digests) and deadline reminders: once per bid per
rule per deadline, whatever how often (or how concurrently) beat runs the jobs; none for removed
or cancelled bids; a moved deadline reminds again."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crawls import services as crawl_services
from crawls.models import Bid
from notifications import digests, matching, reminders, services, tasks
from notifications.models import AlertMatch, AlertRule, EmailDelivery, Notification, Reminder
from project import dbscope
from project.celery import app as celery_app
from tests.factories import make_bid, make_source, new_bid

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def rule_of(workspace, owner, **values) -> AlertRule:
    values = {"name": "Roads", "filter": {"search": "road"}, **values}
    return services.alert_rule_create(workspace_id=workspace.pk, owner=owner, **values)


def match(source, bids, *, changed=()) -> None:
    crawl = crawl_services.crawl_start(source=source, workers=0)
    matching.alert_match_batch(
        crawl_id=crawl.pk,
        workspace_id=source.workspace_id,
        new=[b.pk for b in bids],
        changed=[b.pk for b in changed],
    )
    crawl.status = "succeeded"
    crawl.save(update_fields=["status"])


def kinds() -> list[tuple[str, int | None, int]]:
    rows = Notification.objects.order_by("id").values_list("kind", "rule__name", "count")
    return list(rows)


# --- Digests -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delivery_immediate_hourly_daily(owner, workspace_a, sent_tasks):
    source = make_source(workspace_a, "Board")
    rule_of(workspace_a, owner, name="Now")
    hourly = rule_of(workspace_a, owner, name="Hourly", delivery="hourly", email="h@example.org")
    daily = rule_of(workspace_a, owner, name="Daily", delivery="daily")
    start = hourly.created_at
    match(source, [make_bid(source, title="Road A")])
    match(source, [make_bid(source, title="Road B"), make_bid(source, title="Park")])
    assert kinds() == [("alert_matched", "Now", 1), ("alert_matched", "Now", 1)]
    assert AlertMatch.objects.filter(digested_at=None).count() == 4  # 2 each, waiting

    assert digests.digest_send(now=start + HOUR / 2) == []  # not due yet
    (first,) = digests.digest_send(now=start + HOUR + dt.timedelta(seconds=1))
    digest = Notification.objects.get(pk=first)
    assert (digest.kind, digest.rule, digest.count) == ("alert_digest", hourly, 2)
    assert digest.title == "Hourly: 2 bids in the hourly digest"
    assert "- Road A" in digest.body
    assert "- Road B" in digest.body
    assert EmailDelivery.objects.get(notification=digest).subject == f"[Forest] {digest.title}"
    assert digests.digest_send(now=start + HOUR + dt.timedelta(seconds=2)) == []  # sent: once

    match(source, [make_bid(source, title="Road C")])
    assert digests.digest_send(now=start + 2 * HOUR) == []  # the hour since the last one: not yet
    sent = digests.digest_send(now=start + DAY + HOUR)
    assert sorted(Notification.objects.filter(pk__in=sent).values_list("rule", "count")) == sorted(
        [(hourly.pk, 1), (daily.pk, 3)]
    )
    assert not AlertMatch.objects.filter(digested_at=None).exists()
    daily.refresh_from_db()
    assert daily.digest_sent_at == start + DAY + HOUR


@pytest.mark.django_db
def test_digest_waits_for_an_inactive_rule_and_a_rule_switched_to_immediate_sends_at_once(
    owner, workspace_a, sent_tasks
):
    source = make_source(workspace_a, "Board")
    rule = rule_of(workspace_a, owner, delivery="daily")
    match(source, [make_bid(source, title="Road A")])
    services.alert_rule_update(rule=rule, is_active=False)
    assert digests.digest_send(now=timezone.now() + 2 * DAY) == []
    services.alert_rule_update(rule=rule, is_active=True, delivery="immediate")
    (sent,) = digests.digest_send()
    assert Notification.objects.get(pk=sent).count == 1


def twice_at_once(job: Callable[[], list[int]]) -> list[list[int]]:
    """Run `job` in two threads released together (two beat runs overlapping), each on its own
    database connection; what each returned."""
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(job())
        finally:
            connection.close()

    threads = [threading.Thread(target=dbscope.carried(run)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_digest_is_sent_once_when_two_runs_overlap(owner, workspace_a, sent_tasks):
    source = make_source(workspace_a, "Board")
    rules = [rule_of(workspace_a, owner, name=f"R{n}", delivery="hourly") for n in range(4)]
    match(source, [make_bid(source, title=f"Road {n}") for n in range(5)])
    later = rules[-1].created_at + 2 * HOUR
    results = twice_at_once(lambda: digests.digest_send(now=later))
    assert len(results) == 2
    assert sorted(len(r) for r in results) in ([0, 4], [1, 3], [2, 2])
    digests_made = Notification.objects.filter(kind="alert_digest")
    assert sorted(digests_made.values_list("rule_id", flat=True)) == [r.pk for r in rules]
    assert set(digests_made.values_list("count", flat=True)) == {5}
    assert digests.digest_send(now=later) == []


# --- Reminders -----------------------------------------------------------------------------------


@pytest.fixture
def soon(workspace_a, workspace_b):
    """Bids of the board by what a 7-day reminder makes of them."""
    source = make_source(workspace_a, "Board")
    now = timezone.now()
    bids = {
        "in 3 days": make_bid(source, title="Road A", deadline=now + 3 * DAY, status="active"),
        "in 6 days": make_bid(source, title="Road B", deadline=now + 6 * DAY),
        "in 10 days": make_bid(source, title="Road C", deadline=now + 10 * DAY),
        "past": make_bid(source, title="Road D", deadline=now - DAY),
        "no deadline": make_bid(source, title="Road E"),
        "cancelled": make_bid(source, title="Road F", deadline=now + DAY, status="cancelled"),
        "removed": make_bid(source, title="Road G", deadline=now + DAY, removed_at=now),
        "not a road": make_bid(source, title="Park", deadline=now + DAY),
    }
    elsewhere = make_source(workspace_b, "Other")
    bids["other workspace"] = make_bid(elsewhere, title="Road H", deadline=now + DAY)
    return bids


def reminded() -> set[tuple[int, int]]:
    return set(Reminder.objects.values_list("rule_id", "bid_id"))


@pytest.mark.django_db
def test_reminders_once_per_bid_rule_and_deadline(owner, workspace_a, soon, sent_tasks):
    rule = rule_of(workspace_a, owner, remind_days=7, email="r@example.org")
    rule_of(workspace_a, owner, name="No reminders")
    (sent,) = reminders.reminders_send()
    assert reminded() == {(rule.pk, soon["in 3 days"].pk), (rule.pk, soon["in 6 days"].pk)}
    notification = Notification.objects.get(pk=sent)
    assert (notification.kind, notification.rule, notification.count) == ("reminder", rule, 2)
    assert notification.title == "Roads: 2 deadlines within 7 days"
    assert notification.body.index("Road A") < notification.body.index("Road B")  # soonest first
    assert set(Reminder.objects.values_list("notification", flat=True)) == {notification.pk}
    assert EmailDelivery.objects.filter(notification=notification).count() == 1

    assert reminders.reminders_send() == []  # beat again: nothing new
    assert tasks.reminders_send_task() == []
    moved = soon["in 6 days"]
    moved.deadline += HOUR
    moved.save(update_fields=["deadline"])
    (again,) = reminders.reminders_send()
    assert Notification.objects.get(pk=again).count == 1
    assert Reminder.objects.filter(bid=moved).count() == 2  # the old deadline and the new one
    assert Notification.objects.filter(kind="reminder").count() == 2


@pytest.mark.django_db
def test_reminders_none_for_removed_or_cancelled_bids_nor_departed_owners(
    owner, teammate, workspace_a, soon, sent_tasks
):
    rule = rule_of(workspace_a, owner, remind_days=30, delivery="daily")
    departed = rule_of(workspace_a, teammate, name="Gone", remind_days=30)
    crawl_services.membership_remove(
        membership=workspace_a.memberships.get(user=teammate), actor=teammate
    )
    reminders.reminders_send()
    wanted = {"in 3 days", "in 6 days", "in 10 days"}
    assert reminded() == {(rule.pk, soon[name].pk) for name in wanted}
    assert not Reminder.objects.filter(rule=departed).exists()
    # A digest rule is reminded at once all the same (docs/notifications.md).
    assert Notification.objects.get().kind == "reminder"
    Bid.objects.filter(pk=soon["in 3 days"].pk).update(status="cancelled")
    Bid.objects.filter(pk=soon["in 6 days"].pk).update(
        removed_at=timezone.now(), deadline=soon["in 6 days"].deadline + HOUR
    )
    assert reminders.reminders_send() == []


@pytest.mark.django_db(transaction=True)
def test_reminders_exactly_once_when_two_runs_overlap(owner, workspace_a, sent_tasks):
    source = make_source(workspace_a, "Board")
    now = timezone.now()
    Bid.objects.bulk_create(
        new_bid(source, title=f"Road {n}", deadline=now + dt.timedelta(hours=n + 1))
        for n in range(200)
    )
    rules = [rule_of(workspace_a, owner, name=f"R{n}", remind_days=14) for n in range(3)]
    results = twice_at_once(lambda: reminders.reminders_send(now=now))
    assert len(results) == 2
    assert Reminder.objects.count() == 3 * 200
    counts = Notification.objects.filter(kind="reminder").values_list("rule_id", "count")
    per_rule: dict[int, int] = {}
    for rule_id, count in counts:
        per_rule[rule_id] = per_rule.get(rule_id, 0) + count
    assert per_rule == {rule.pk: 200 for rule in rules}  # each reminder told once
    assert reminders.reminders_send(now=now) == []


def test_digest_and_reminder_jobs_are_scheduled_by_beat():
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["notifications.digest_send"] == 300.0
    assert schedule["notifications.reminders_send"] == 900.0
    assert {"notifications.digest_send", "notifications.reminders_send"} <= set(celery_app.tasks)


@pytest.mark.django_db
def test_reminders_follow_a_changed_filter(owner, workspace_a, soon, sent_tasks):
    rule = rule_of(workspace_a, owner, remind_days=2)
    reminders.reminders_send()
    assert reminded() == set()  # the roads close in 3 days or later
    services.alert_rule_update(rule=rule, filter={"search": "park"})
    reminders.reminders_send()
    assert reminded() == {(rule.pk, soon["not a road"].pk)}
    services.alert_rule_update(rule=rule, filter={"closing_within_days": 4}, remind_days=7)
    reminders.reminders_send()
    assert reminded() == {(rule.pk, soon[name].pk) for name in ("not a road", "in 3 days")}
