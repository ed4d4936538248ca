"""Alert conditions (new; changed, any field or named ones; removed; cancelled; amount changed by
at least X%; deadline moved) on bids stored the way crawls store them (crawls.engine.store), the
messages saying what changed, the webhook payload's reasons and changes, the query budget of
matching, and the rule options in the API and the dashboard form."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crawls import events
from crawls import services as crawl_services
from crawls.engine import urls
from crawls.engine.store import Item, bids_store
from crawls.models import Bid, BidRevision, Crawl
from notifications import matching, messages, services, subscribers
from notifications.models import (
    AlertMatch,
    AlertRule,
    EmailDelivery,
    Notification,
    WebhookDelivery,
)
from tests.crawling import wait_for_crawl
from tests.factories import make_source
from tests.processes import http_get

API = "/api/v1"
DEADLINE = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def notice_board(workspace_a):
    return make_source(workspace_a, "Board")


@pytest.fixture
def crawl_batch(notice_board, django_capture_on_commit_callbacks, sent_tasks):
    """crawl_batch(bids) -> the crawl: a new crawl of the board stores `bids` ({number: fields})
    as the engine does and appends its crawl.items event; the subscriber runs on commit."""

    def run(bids: dict[int, dict], *, removed: list[int] = ()) -> Crawl:
        Crawl.objects.filter(source=notice_board, status__in=Crawl.ACTIVE).update(
            status="succeeded"
        )
        crawl = crawl_services.crawl_start(source=notice_board, workers=0)
        with django_capture_on_commit_callbacks(execute=True):
            stored = bids_store(
                crawl_id=crawl.pk,
                source_id=notice_board.pk,
                workspace_id=notice_board.workspace_id,
                items=[item(n, fields) for n, fields in bids.items()],
                now=timezone.now(),
            )
            events.event_append(
                crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.ITEMS,
                payload={"new": stored.new, "changed": stored.changed, "removed": list(removed)},
            )  # fmt: skip
        return crawl

    return run


def item(n: int, fields: dict) -> Item:
    url = f"https://board.example/notices/{n}"
    values = {"title": f"Road works {n}", "status": "active", **fields}
    return Item(
        url=url, url_hash=urls.url_hash(url), fields=values, content_hash=urls.content_hash(values)
    )


def bid(n: int) -> Bid:
    return Bid.objects.get(url=f"https://board.example/notices/{n}")


def rule_of(workspace, owner, **values) -> AlertRule:
    values = {"name": "Roads", "filter": {"search": "road"}, **values}
    return services.alert_rule_create(workspace_id=workspace.pk, owner=owner, **values)


def matched(rule, crawl) -> dict[int, list[str]]:
    rows = AlertMatch.objects.filter(rule=rule, crawl=crawl).values_list("bid_id", "reasons")
    return dict(rows)


@pytest.mark.django_db
def test_alert_condition_new_matches_new_bids_only(owner, workspace_a, crawl_batch):
    rule = rule_of(workspace_a, owner, conditions=["new"])
    first = crawl_batch({1: {}, 2: {"title": "Park benches"}})
    assert matched(rule, first) == {bid(1).pk: ["new"]}
    second = crawl_batch({1: {"amount": Decimal(5)}, 3: {}})
    assert matched(rule, second) == {bid(3).pk: ["new"]}  # 1 changed: not news to this rule
    match = AlertMatch.objects.get(rule=rule, crawl=second)
    assert (match.is_new, match.changes) == (True, {})


@pytest.mark.django_db
def test_alert_condition_changed_any_field_or_the_named_fields(owner, workspace_a, crawl_batch):
    anything = rule_of(workspace_a, owner, name="Any", conditions=["changed"])
    deadlines = rule_of(
        workspace_a, owner, name="Deadlines", conditions=["changed"],
        changed_fields=["deadline", "extra.region"],
    )  # fmt: skip
    crawl_batch({1: {}, 2: {"deadline": DEADLINE}, 3: {"region": "north"}})
    crawl = crawl_batch(
        {1: {"title": "Road works 1 (amended)"}, 2: {"deadline": DEADLINE + dt.timedelta(days=3)},
         3: {"region": "south"}}
    )  # fmt: skip
    assert matched(anything, crawl) == {
        bid(1).pk: ["changed"], bid(2).pk: ["changed"], bid(3).pk: ["changed"]
    }  # fmt: skip
    assert matched(deadlines, crawl) == {bid(2).pk: ["changed"], bid(3).pk: ["changed"]}
    changes = AlertMatch.objects.get(rule=deadlines, bid=bid(3)).changes
    assert changes == {"extra.region": ["north", "south"]}
    assert AlertMatch.objects.get(rule=anything, bid=bid(1)).changes == {
        "title": ["Road works 1", "Road works 1 (amended)"]
    }


@pytest.mark.django_db
def test_alert_condition_cancelled_is_a_status_change_to_cancelled(owner, workspace_a, crawl_batch):
    rule = rule_of(workspace_a, owner, conditions=["cancelled"])
    crawl_batch({1: {}, 2: {}, 3: {"status": "cancelled"}})
    crawl = crawl_batch({1: {"status": "cancelled"}, 2: {"status": "awarded"}, 4: {}})
    assert matched(rule, crawl) == {bid(1).pk: ["cancelled"]}
    notification = Notification.objects.get(rule=rule, crawl=crawl)
    assert "status: active -> cancelled" in notification.body
    assert "[cancelled]" in notification.body


@pytest.mark.django_db
def test_alert_condition_amount_changed_by_at_least_the_percentage(owner, workspace_a, crawl_batch):
    rule = rule_of(workspace_a, owner, conditions=["amount_changed"], amount_change_pct="10")
    any_change = rule_of(workspace_a, owner, name="Any amount", conditions=["amount_changed"])
    before = {1: Decimal(1000), 2: Decimal(1000), 3: None, 4: Decimal(0), 5: Decimal(1000)}
    after = {1: Decimal(1050), 2: Decimal(890), 3: Decimal(500), 4: Decimal(100), 5: None}
    crawl_batch({n: {"amount": amount} for n, amount in before.items()})
    crawl = crawl_batch({n: {"amount": amount} for n, amount in after.items()})
    # 1: +5% (under 10); 2: -11%; 3: none before (no base); 4: zero before; 5: gone (no amount)
    assert matched(rule, crawl) == {bid(2).pk: ["amount_changed"]}
    assert matched(any_change, crawl) == {
        bid(1).pk: ["amount_changed"], bid(2).pk: ["amount_changed"]
    }  # fmt: skip
    assert "amount: 1000 -> 890" in Notification.objects.get(rule=rule).body


@pytest.mark.django_db
def test_alert_condition_deadline_moved_needs_a_deadline_before_and_after(
    owner, workspace_a, crawl_batch
):
    rule = rule_of(workspace_a, owner, conditions=["deadline_moved", "new"])
    crawl_batch({1: {"deadline": DEADLINE}, 2: {}, 3: {"deadline": DEADLINE}})
    later = DEADLINE + dt.timedelta(days=7)
    crawl = crawl_batch({1: {"deadline": later}, 2: {"deadline": later}, 3: {}, 4: {}})
    assert matched(rule, crawl) == {bid(1).pk: ["deadline_moved"], bid(4).pk: ["new"]}
    body = Notification.objects.get(rule=rule, crawl=crawl).body
    assert f"deadline: {DEADLINE.isoformat()} -> {later.isoformat()}" in body


@pytest.mark.django_db
def test_alert_condition_removed_matches_removed_bids_by_their_last_fields(
    owner, workspace_a, crawl_batch, notice_board
):
    removed = rule_of(workspace_a, owner, conditions=["removed"])
    changes_only = rule_of(workspace_a, owner, name="Changes", conditions=["changed"])
    crawl_batch({1: {}, 2: {"title": "Park benches"}})
    gone = [bid(1).pk, bid(2).pk]
    # What crawls.engine.presence records for a bid no longer on the board.
    Crawl.objects.filter(source=notice_board).update(status="succeeded")
    crawl = crawl_services.crawl_start(source=notice_board, workers=0)
    Bid.objects.filter(pk__in=gone).update(removed_at=timezone.now())
    BidRevision.objects.bulk_create(
        BidRevision(
            workspace=workspace_a, bid_id=pk, crawl=crawl, changes={"removed": [False, True]}
        )
        for pk in gone
    )
    matching.alert_match_batch(
        crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[], changed=[], removed=gone
    )
    assert matched(removed, crawl) == {bid(1).pk: ["removed"]}  # 2 is no road
    assert matched(changes_only, crawl) == {}
    notification = Notification.objects.get(rule=removed)
    assert "removed: no -> yes" in notification.body
    assert "[removed]" in notification.body


@pytest.mark.django_db
def test_alert_message_lists_ten_bids_then_and_more(owner, workspace_a, crawl_batch):
    rule = rule_of(workspace_a, owner, email="roads@example.org")
    crawl = crawl_batch({n: {} for n in range(1, 13)})
    notification = Notification.objects.get(rule=rule, crawl=crawl)
    assert notification.count == 12
    assert notification.body.count("\n- ") == 10
    assert notification.body.endswith("and 2 more")
    email = EmailDelivery.objects.get(notification=notification)
    assert email.body.startswith(notification.body)


@pytest.mark.django_db
def test_alert_webhook_payload_carries_reasons_and_changes(owner, workspace_a, crawl_batch):
    # The session's allowlisted receiver; its task is captured (sent_tasks), nothing is sent.
    url = f"http://{os.environ['TEST_WEBHOOK_RECEIVER']}/hook"
    rule = rule_of(workspace_a, owner, conditions=["new", "amount_changed"], webhook_url=url)
    crawl_batch({1: {"amount": Decimal(100)}})
    crawl = crawl_batch({1: {"amount": Decimal(250)}, 2: {}})
    payload = WebhookDelivery.objects.filter(rule=rule).order_by("id").last().payload
    assert payload["crawl"] == crawl.pk
    assert payload["batch"] == {"new": [bid(2).pk], "changed": [bid(1).pk]}
    assert payload["matches"] == [
        {"bid": bid(1).pk, "title": "Road works 1", "reasons": ["amount_changed"],
         "changes": {"amount": ["100", "250"]}},
        {"bid": bid(2).pk, "title": "Road works 2", "reasons": ["new"], "changes": {}},
    ]  # fmt: skip


@pytest.mark.django_db
def test_alert_match_redelivered_event_changes_nothing(owner, workspace_a, crawl_batch):
    rule = rule_of(workspace_a, owner, conditions=["changed"])
    crawl_batch({1: {}})
    crawl = crawl_batch({1: {"amount": Decimal(9)}})
    event = crawl.events.get(type=events.ITEMS)
    subscribers.crawl_event(event)
    subscribers.crawl_event(event)
    assert Notification.objects.get(rule=rule, crawl=crawl).count == 1
    assert AlertMatch.objects.filter(rule=rule).count() == 1


@pytest.mark.django_db
def test_alert_match_queries_grow_by_one_per_matching_digest_rule(owner, workspace_a, crawl_batch):
    """Per batch: the rules, the crawl's revisions, then one INSERT per rule with candidates
    (a digest rule notifies nothing at match time)."""
    crawl_batch({n: {} for n in range(1, 21)})
    ids = [bid(n).pk for n in range(1, 21)]

    def queries(crawl) -> int:
        with CaptureQueriesContext(connection) as captured:
            matching.alert_match_batch(
                crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[], changed=ids
            )
        return len(captured)

    rule_of(workspace_a, owner, name="R0", delivery="hourly")
    one = queries(Crawl.objects.create(workspace=workspace_a, source=bid(1).source))
    for n in range(1, 6):
        rule_of(workspace_a, owner, name=f"R{n}", delivery="daily")
    six = queries(Crawl.objects.create(workspace=workspace_a, source=bid(1).source))
    assert six - one == 5
    assert one <= 6  # savepoint, rules, revisions, the INSERT, release
    assert AlertMatch.objects.filter(digested_at=None).count() == 20 + 6 * 20  # both crawls


# --- Rule options: API and dashboard ------------------------------------------------------------


def body(workspace, **values) -> dict:
    return {"workspace": workspace.pk, "name": "Roads", "filter": {"search": "road"}, **values}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"conditions": ["new", "vanished"]}, "conditions"),
        ({"changed_fields": ["colour"]}, "changed_fields"),
        ({"changed_fields": ["extra.bad key"]}, "changed_fields"),
        ({"amount_change_pct": "0"}, "amount_change_pct"),
        ({"amount_change_pct": "10000.01"}, "amount_change_pct"),
        ({"remind_days": 0}, "remind_days"),
        ({"remind_days": 366}, "remind_days"),
        ({"delivery": "weekly"}, "delivery"),
    ],
)
def test_alert_rule_api_refuses_bad_options_naming_the_field(
    api, owner, workspace_a, values, field
):
    response = api(owner).post(f"{API}/alert-rules/", body(workspace_a, **values), format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()["error"]["details"]) == {field}
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_alert_rule_api_saves_and_changes_options(api, owner, workspace_a):
    client = api(owner)
    options = {
        "conditions": ["removed", "amount_changed", "deadline_moved"],
        "changed_fields": ["amount", "extra.region"],
        "amount_change_pct": "12.50",
        "remind_days": 7,
        "delivery": "daily",
    }
    created = client.post(f"{API}/alert-rules/", body(workspace_a, **options), format="json")
    assert created.status_code == 201, created.json()
    assert {k: created.json()[k] for k in options} == options
    rule = AlertRule.objects.get()
    assert (rule.remind_days, rule.amount_change_pct, rule.delivery) == (
        7,
        Decimal("12.5"),
        "daily",
    )
    patched = client.patch(
        f"{API}/alert-rules/{rule.pk}/", {"delivery": "hourly", "remind_days": None}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    rule.refresh_from_db()
    assert (rule.delivery, rule.remind_days) == ("hourly", None)
    default = client.post(f"{API}/alert-rules/", body(workspace_a), format="json").json()
    assert (default["conditions"], default["delivery"]) == (["new", "changed"], "immediate")


@pytest.mark.django_db
def test_alert_rule_form_saves_conditions_and_delivery(client, owner, workspace_a):
    client.force_login(owner)
    response = client.post(
        reverse("notifications:rule_create"),
        {
            "name": "Moves", "search": "road", "is_active": "on",
            "conditions": ["deadline_moved", "cancelled"], "changed_fields": "amount, extra.region",
            "amount_change_pct": "5", "remind_days": "3", "delivery": "hourly",
        },
    )  # fmt: skip
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.conditions == ["deadline_moved", "cancelled"]
    assert rule.changed_fields == ["amount", "extra.region"]
    assert (rule.amount_change_pct, rule.remind_days, rule.delivery) == (5, 3, "hourly")
    page = client.get(reverse("notifications:rule_edit", args=[rule.pk])).content.decode()
    assert 'value="amount, extra.region"' in page
    for values, field in (
        ({"remind_days": "400"}, "remind_days"),
        ({"changed_fields": "colour"}, "changed_fields"),
    ):
        bad = client.post(
            reverse("notifications:rule_edit", args=[rule.pk]), {"name": "Moves", **values}
        )
        assert bad.status_code == 400
        assert list(bad.context["form"].errors) == [field]
    rule.refresh_from_db()
    assert rule.remind_days == 3


# --- Real crawls of the demo board through the worker ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_alert_conditions_on_a_recrawl_of_the_demo_board(celery_worker, owner, demo_source, board):
    """The board at epoch 1 changes notices: the rule for changes hears of exactly the bids the
    crawl's revisions changed, with their changes, and the rule for new ones of none of them."""
    changes = rule_of(
        demo_source.workspace, owner, name="Changes", filter={}, conditions=["changed"]
    )
    new_only = rule_of(demo_source.workspace, owner, name="New", filter={}, conditions=["new"])
    first = wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))
    assert first.status == "succeeded", first.error
    assert AlertMatch.objects.filter(rule=new_only, crawl=first).count() == first.items_new
    assert not AlertMatch.objects.filter(rule=changes, crawl=first).exists()

    assert http_get(f"{board.base_url}/_control/epoch?set=1")[0] == 200
    second = wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))
    assert second.status == "succeeded", second.error
    revised = dict(BidRevision.objects.filter(crawl=second).values_list("bid_id", "changes"))
    assert revised
    found = dict(
        AlertMatch.objects.filter(rule=changes, crawl=second).values_list("bid_id", "changes")
    )
    assert found == revised
    reasons = AlertMatch.objects.filter(rule=changes, crawl=second).values_list(
        "reasons", flat=True
    )
    assert all(r == ["changed"] for r in reasons)
    new_matches = AlertMatch.objects.filter(rule=new_only, crawl=second).count()
    assert new_matches == second.items_new
    body = Notification.objects.get(rule=changes, crawl=second).body
    listed = AlertMatch.objects.filter(rule=changes, crawl=second).order_by("id").first()
    assert f"(#{listed.bid_id}) [changed]" in body
    assert messages.change_lines(listed.changes)[0] in body  # "field: old -> new"
