"""Notifications: alert matching of committed crawl batches, crawl outcomes, live push, email,
signed webhooks through a real Celery worker, the SSRF guard, and the dashboard pages."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone
from websockets.sync.client import connect

from crawls import events, realtime
from crawls import services as crawl_services
from crawls.models import Crawl, CrawlEvent
from notifications import emails, services, subscribers, tasks, webhooks
from notifications.models import (
    AlertMatch,
    AlertRule,
    EmailDelivery,
    Notification,
    WebhookDelivery,
)
from tests.clients import group_members, session_cookie
from tests.crawling import wait_for_crawl
from tests.factories import NOW, make_bid, make_source
from tests.processes import http_get, wait_until

TIMEOUT = 30


# --- A local webhook receiver, allowlisted for the worker ---------------------------------------


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers with the scripted statuses in turn, then 200."""

    daemon_threads = True

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        super().__init__((host, int(port)), _ReceiverHandler)
        self.address = address
        self.reset()

    def reset(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        self.got = threading.Condition()

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[tuple[dict, bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.requests) >= count, timeout), self.requests
        return self.requests


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        status = server.statuses.pop(0) if server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with server.got:
            server.requests.append((dict(self.headers), body))
            server.got.notify_all()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def _receiver_server():
    """The receiver at the session's TEST_WEBHOOK_RECEIVER address: tests/bootstrap.py put it
    in CRAWL_ALLOWLIST and made webhook retries fast for every worker the session starts."""
    server = Receiver(os.environ["TEST_WEBHOOK_RECEIVER"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def receiver(_receiver_server):
    _receiver_server.reset()
    return _receiver_server


# --- Helpers -------------------------------------------------------------------------------------


def make_crawl(source, user=None) -> Crawl:
    return crawl_services.crawl_start(source=source, user=user, workers=0)


def make_rule(workspace, owner, **values) -> AlertRule:
    values = {"name": "Roads", "filter": {"search": "road"}, **values}
    return services.alert_rule_create(workspace_id=workspace.pk, owner=owner, **values)


def items_event(crawl, *, new=(), changed=()) -> CrawlEvent:
    """Append a committed batch's crawl.items event (subscribers run on commit)."""
    return events.event_append(
        crawl_id=crawl.pk,
        workspace_id=crawl.workspace_id,
        type=events.ITEMS,
        payload={"new": [b.pk for b in new], "changed": [b.pk for b in changed]},
    )


def send_emails() -> None:
    """What the worker's task does with each stored alert email, done here (locmem outbox)."""
    for delivery_id in EmailDelivery.objects.values_list("pk", flat=True):
        emails.email_send(delivery_id=delivery_id)


@pytest.fixture
def source_a(workspace_a):
    return make_source(workspace_a, "Board")


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the subscribers, pushes, emails) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- Matching ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_alert_match_counts_new_and_changed_bids_not_others(
    owner, workspace_a, source_a, on_commit
):
    rule = make_rule(workspace_a, owner, filter={"search": "road", "views_min": 10})
    crawl = make_crawl(source_a, owner)
    new = make_bid(source_a, title="Road repair", views=20)
    changed = make_bid(source_a, title="Road paint", views=50)
    make_bid(source_a, title="Road sweeping", views=99)  # unchanged: not in the batch
    too_few = make_bid(source_a, title="Road signs", views=1)
    other = make_bid(source_a, title="School roof", views=80)
    with on_commit():
        items_event(crawl, new=[new, too_few, other], changed=[changed])

    notification = Notification.objects.get(kind=Notification.Kind.ALERT_MATCHED)
    assert (notification.recipient, notification.rule, notification.crawl) == (owner, rule, crawl)
    assert notification.count == 2
    assert notification.title == "Roads: 2 bids matched"
    assert notification.link == f"/bids/?search=road&views_min=10&crawl={crawl.pk}"
    matches = set(AlertMatch.objects.values_list("bid_id", "is_new"))
    assert matches == {(new.pk, True), (changed.pk, False)}


@pytest.mark.django_db
def test_alert_rules_match_on_the_procurement_columns(owner, workspace_a, source_a, on_commit):
    cancelled = make_rule(workspace_a, owner, name="Cancelled", filter={"status": "cancelled"})
    works = make_rule(
        workspace_a,
        owner,
        name="Works in won",
        filter={"currency": "krw", "classification": "CPV:45*", "status": ["active", "awarded"]},
    )
    crawl = make_crawl(source_a, owner)
    withdrawn = make_bid(
        source_a, status="cancelled", currency="KRW", classifications=["CPV:45000000"]
    )
    road = make_bid(source_a, status="active", currency="KRW", classifications=["CPV:45233140"])
    dollars = make_bid(source_a, status="active", currency="USD", classifications=["CPV:45000000"])
    lights = make_bid(source_a, status="awarded", currency="KRW", classifications=["CPV:31520000"])
    with on_commit():
        items_event(crawl, new=[withdrawn, road, dollars], changed=[lights])

    matched = {
        (rule_id, bid_id) for rule_id, bid_id in AlertMatch.objects.values_list("rule", "bid")
    }
    assert matched == {(cancelled.pk, withdrawn.pk), (works.pk, road.pk)}
    notification = Notification.objects.get(rule=cancelled)
    assert notification.count == 1
    assert notification.link == f"/bids/?status=cancelled&crawl={crawl.pk}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filter",
    [
        {"status": "deleted"},
        {"status": ["active", "open"]},
        {"currency": "XYZ"},
        {"currency": "won"},
        {"classification": "CP*"},
        {"classification": "CPV:4*5"},
        {"procurement_method": "x" * 101},
    ],
)
def test_alert_rules_refuse_bad_procurement_filters(owner, workspace_a, filter):
    with pytest.raises(services.ValidationError) as refused:
        make_rule(workspace_a, owner, filter=filter)
    (name,) = filter
    (message,) = refused.value.message_dict["filter"]
    assert message.startswith(f"{name}: ")
    assert services.alert_filter_errors(filter=filter).keys() == {name}
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_alert_match_groups_one_notification_per_rule_per_crawl(
    owner, teammate, workspace_a, source_a, on_commit
):
    roads = make_rule(workspace_a, owner)
    everything = make_rule(workspace_a, teammate, name="All", filter={})
    crawl = make_crawl(source_a)
    first = [make_bid(source_a, title=f"Road {i}") for i in range(3)]
    second = [make_bid(source_a, title="Road 9"), make_bid(source_a, title="Park")]
    with on_commit():
        items_event(crawl, new=first)
    Notification.objects.filter(rule=roads).update(read_at=NOW)
    with on_commit():
        items_event(crawl, new=second[:1], changed=second[1:])

    counts = dict(Notification.objects.filter(kind="alert_matched").values_list("rule_id", "count"))
    assert counts == {roads.pk: 4, everything.pk: 5}
    assert Notification.objects.get(rule=roads).read_at is None  # news again
    later = make_crawl_after(source_a, crawl)
    with on_commit():
        items_event(later, new=[make_bid(source_a, title="Road 10")])
    assert Notification.objects.filter(rule=roads).count() == 2


def make_crawl_after(source, crawl) -> Crawl:
    Crawl.objects.filter(pk=crawl.pk).update(status=Crawl.Status.SUCCEEDED)
    return make_crawl(source)


@pytest.mark.django_db
def test_alert_match_redelivered_batch_changes_nothing(
    owner, workspace_a, source_a, on_commit, mailoutbox
):
    make_rule(workspace_a, owner, email="olivia@example.org")
    crawl = make_crawl(source_a)
    bids = [make_bid(source_a, title="Road works"), make_bid(source_a, title="Road lights")]
    with on_commit():
        event = items_event(crawl, new=bids)
    with on_commit():
        subscribers.crawl_event(event)  # the same event, delivered again
        subscribers.crawl_event(event)
    send_emails()
    notification = Notification.objects.get(kind="alert_matched")
    assert notification.count == 2
    assert AlertMatch.objects.count() == 2
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_a_batch_whose_match_was_lost_is_matched_when_the_crawl_ends(
    owner, workspace_a, source_a, on_commit
):
    """The subscriber's call for a committed batch can be lost (the database went away right
    after the commit): the next event delivered (here the final one) hands the subscriber every
    event after its position in the log (crawls.subscribers), the lost batch too."""
    rule = make_rule(workspace_a, owner)
    crawl = make_crawl(source_a, owner)
    seen = [make_bid(source_a, title="Road works")]
    lost = [make_bid(source_a, title="Road lights"), make_bid(source_a, title="Park")]
    with on_commit():
        items_event(crawl, new=seen)
    items_event(crawl, new=lost[:1], changed=lost[1:])  # committed, its callbacks never ran
    assert Notification.objects.get(rule=rule).count == 1

    Crawl.objects.filter(pk=crawl.pk).update(status=Crawl.Status.SUCCEEDED)
    with on_commit():
        final = events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.SUCCEEDED
        )
    notification = Notification.objects.get(rule=rule)
    assert notification.count == 2
    assert set(AlertMatch.objects.values_list("bid_id", flat=True)) == {seen[0].pk, lost[0].pk}
    with on_commit():
        subscribers.crawl_event(final)  # delivered again: nobody is told twice
    assert Notification.objects.get(rule=rule).count == 2


@pytest.mark.django_db
def test_alert_match_ignores_inactive_rules_other_workspaces_and_departed_owners(
    owner, teammate, outsider, workspace_a, workspace_b, source_a, on_commit
):
    make_rule(workspace_a, owner, is_active=False)
    make_rule(workspace_b, outsider)
    make_rule(workspace_a, teammate)
    crawl_services.membership_remove(
        membership=workspace_a.memberships.get(user=teammate), actor=teammate
    )
    crawl = make_crawl(source_a)
    with on_commit():
        items_event(crawl, new=[make_bid(source_a, title="Road")])
    assert not Notification.objects.filter(kind="alert_matched").exists()


@pytest.mark.django_db
def test_alert_email_is_sent_once_per_crawl(owner, workspace_a, source_a, on_commit, mailoutbox):
    make_rule(workspace_a, owner, email="alerts@example.org")
    crawl = make_crawl(source_a)
    with on_commit():
        items_event(crawl, new=[make_bid(source_a, title="Road A")])
    with on_commit():
        items_event(crawl, new=[make_bid(source_a, title="Road B")])
    send_emails()
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alerts@example.org"]
    assert mail.subject == "[Forest] Roads: 1 bid matched"
    assert f"/bids/?search=road&crawl={crawl.pk}" in mail.body


# --- Crawl outcomes ------------------------------------------------------------------------------


def finish(crawl, type_, error=""):
    status = {events.SUCCEEDED: "succeeded", events.FAILED: "failed"}[type_]
    Crawl.objects.filter(pk=crawl.pk).update(status=status, error=error)
    return events.event_append(
        crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=type_, payload={}
    )


@pytest.mark.django_db
def test_crawl_outcomes_go_to_the_creator_once(teammate, workspace_a, source_a, on_commit):
    crawl = make_crawl(source_a, teammate)
    with on_commit():
        event = finish(crawl, events.SUCCEEDED)
    with on_commit():
        subscribers.crawl_event(event)  # redelivered
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind) == (teammate, "crawl_succeeded")
    assert notification.title == "Crawl of Board succeeded"
    assert notification.link == f"/crawls/{crawl.pk}/"


@pytest.mark.django_db
def test_crawl_failure_without_creator_goes_to_owners_and_admins(
    owner, teammate, viewer, workspace_a, source_a, on_commit
):
    crawl = make_crawl(source_a)  # scheduled: no creator
    with on_commit():
        finish(crawl, events.FAILED, error="no page could be fetched")
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind) == (owner, "crawl_failed")
    assert notification.body == "no page could be fetched"
    quiet = make_crawl_after(source_a, crawl)
    with on_commit():
        finish(quiet, events.SUCCEEDED)  # a scheduled success tells nobody
    assert Notification.objects.count() == 1


# --- Live push through the real daphne -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_notification_is_pushed_to_the_users_socket(daphne_server, owner, workspace_a):
    source = make_source(workspace_a, "Board")
    rule = make_rule(workspace_a, owner)
    crawl = make_crawl(source)
    bid = make_bid(source, title="Road works")
    group = realtime.notifications_group(owner.pk)
    before = group_members(group)
    with connect(
        f"ws://127.0.0.1:{daphne_server.port}/ws/notifications/",
        origin=f"http://127.0.0.1:{daphne_server.port}",
        additional_headers={"Cookie": session_cookie(owner)},
        open_timeout=TIMEOUT,
    ) as socket:
        # The consumer joins its group just after the handshake.
        wait_until(lambda: group_members(group) > before, what="the socket in its group")
        items_event(crawl, new=[bid])  # commits: the subscriber runs in this process
        realtime.flush()
        message = json.loads(socket.recv(timeout=TIMEOUT))
    notification = Notification.objects.get(rule=rule)
    assert message["type"] == "notification.message"
    assert message["unread"] == 1
    assert message["notification"]["id"] == notification.pk
    assert message["notification"]["title"] == "Roads: 1 bid matched"
    assert message["notification"]["link"] == f"/bids/?search=road&crawl={crawl.pk}"


# --- Webhooks ------------------------------------------------------------------------------------


def verify(headers: dict, body: bytes, secret: str) -> bool:
    """What a receiver does (docs/notifications.md): recompute, compare, check the time."""
    timestamp = headers["X-Forest-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(
        headers["X-Forest-Signature"], f"sha256={expected.hexdigest()}"
    )


def wait_for_status(delivery_id: int, status: str) -> WebhookDelivery:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        if delivery.status == status:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"delivery {delivery_id} still {delivery.status}")


_DELIVER_TASK = re.compile(
    r"notifications\.webhook_deliver\[([0-9a-f-]+)\] (?:received|succeeded in [^:]+: (\w+))"
)


def attempts_ended(worker_log: str, count: int) -> bool:
    """The worker log shows `count` webhook_deliver tasks received, all of them ended, and one
    (the last attempt) that scheduled no next attempt (returned None)."""
    received, ended = set(), {}
    for task_id, returned in _DELIVER_TASK.findall(worker_log):
        if returned:
            ended[task_id] = returned
        else:
            received.add(task_id)
    return len(received) == count and received <= ended.keys() and "None" in ended.values()


@pytest.mark.django_db(transaction=True)
def test_webhook_is_signed_retried_and_delivered_by_the_worker(
    celery_worker, receiver, owner, workspace_a
):
    receiver.reset(statuses=[503])  # the first attempt fails, the retry succeeds
    source = make_source(workspace_a, "Board")
    rule = make_rule(workspace_a, owner, webhook_url=f"http://{receiver.address}/hook")
    crawl = make_crawl(source)
    new, changed = make_bid(source, title="Road A"), make_bid(source, title="Road B")
    services.alert_match_batch(
        crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[new.pk], changed=[changed.pk]
    )
    requests = receiver.wait_for(2)
    delivery = wait_for_status(WebhookDelivery.objects.get(rule=rule).pk, "succeeded")
    assert (delivery.attempts, delivery.response_status) == (2, 200)
    headers, body = requests[-1]
    assert verify(headers, body, rule.webhook_secret)
    assert not verify(headers, body, "another secret")
    assert not verify({**headers, "X-Forest-Timestamp": "1"}, body, rule.webhook_secret)
    payload = json.loads(body)
    assert payload["event"] == "alert.matched"
    assert payload["rule"] == {"id": rule.pk, "name": "Roads"}
    assert payload["batch"] == {"new": [new.pk], "changed": [changed.pk]}
    assert payload["count"] == 2
    assert requests[0][1] == body  # a retry sends the same payload


@pytest.mark.django_db(transaction=True)
def test_webhook_goes_dead_after_max_attempts(celery_worker, receiver, owner, workspace_a):
    mark = len(celery_worker.output())
    receiver.reset(statuses=[500, 500, 500, 500])
    source = make_source(workspace_a, "Board")
    rule = make_rule(workspace_a, owner, webhook_url=f"http://{receiver.address}/hook")
    crawl = make_crawl(source)
    services.alert_match_batch(
        crawl_id=crawl.pk,
        workspace_id=workspace_a.pk,
        new=[make_bid(source, title="Road").pk],
        changed=[],
    )
    delivery = wait_for_status(WebhookDelivery.objects.get(rule=rule).pk, "dead")
    assert (delivery.attempts, delivery.last_error) == (3, "HTTP 500")
    # Nothing more comes after the dead letter: the attempts' tasks have all ended.
    celery_worker.wait_until(
        lambda: attempts_ended(celery_worker.output()[mark:], 3), what="the attempts' tasks"
    )
    assert len(receiver.requests) == 3


@pytest.mark.django_db(transaction=True)
def test_webhook_sweep_resends_a_delivery_whose_task_was_lost(
    celery_worker, receiver, owner, workspace_a
):
    rule = make_rule(workspace_a, owner, webhook_url=f"http://{receiver.address}/hook")
    lost = WebhookDelivery.objects.create(
        workspace=workspace_a,
        rule=rule,
        url=rule.webhook_url,
        payload={"event": "alert.matched"},
        next_attempt_at=timezone.now() - dt.timedelta(hours=1),
    )
    recent = WebhookDelivery.objects.create(
        workspace=workspace_a, rule=rule, url=rule.webhook_url, payload={}
    )
    assert tasks.webhook_sweep_task() == [lost.pk]
    assert wait_for_status(lost.pk, "succeeded").attempts == 1
    assert WebhookDelivery.objects.get(pk=recent.pk).status == "pending"


@pytest.mark.django_db
def test_webhook_to_a_private_address_is_refused_at_validation_and_at_delivery(
    owner, workspace_a, source_a
):
    for url in ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://localhost/hook"]:
        with pytest.raises(services.ValidationError) as refused:
            make_rule(workspace_a, owner, webhook_url=url)
        assert "webhook_url" in refused.value.message_dict
    rule = make_rule(workspace_a, owner, webhook_url="https://93.184.215.14/hook")
    # Saved before the guard would refuse it (e.g. an allowlist entry removed since):
    delivery = WebhookDelivery.objects.create(
        workspace=workspace_a, rule=rule, url="http://169.254.169.254/latest", payload={}
    )
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error == "refused: cloud metadata address 169.254.169.254"
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None  # dead stays dead
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_webhook_backoff_is_exponential_and_capped(settings):
    settings.WEBHOOK_BACKOFF_SECONDS = 30
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 100
    assert [webhooks.webhook_backoff(attempts=n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


# --- End to end: real crawls of the demo board through the worker -------------------------------


@pytest.mark.django_db(transaction=True)
def test_recrawl_notifies_changes_and_a_rerun_without_changes_notifies_no_alert(
    celery_worker, owner, demo_source, board
):
    rule = make_rule(demo_source.workspace, owner, name="All", filter={})
    first = wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))
    assert first.status == "succeeded", first.error
    alert = Notification.objects.get(rule=rule, crawl=first)
    assert alert.count == first.items_new > 0
    # The outcome's notification is stored by the subscriber once the final event committed.
    succeeded = Notification.objects.filter(crawl=first, kind="crawl_succeeded")
    wait_until(succeeded.exists, what="the crawl_succeeded notification", timeout=30)
    assert succeeded.count() == 1

    rerun = wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))
    assert (rerun.items_new, rerun.items_changed) == (0, 0)
    assert not CrawlEvent.objects.filter(crawl=rerun, type=events.ITEMS).exists()
    assert not Notification.objects.filter(rule=rule, crawl=rerun).exists()

    assert http_get(f"{board.base_url}/_control/epoch?set=1")[0] == 200
    changed = wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))
    alert = Notification.objects.get(rule=rule, crawl=changed)
    assert alert.count == changed.items_new + changed.items_changed > 0
    states = AlertMatch.objects.filter(rule=rule, crawl=changed).values_list("is_new", flat=True)
    assert sorted(states) == sorted([False] * changed.items_changed + [True] * changed.items_new)


# --- Pages ---------------------------------------------------------------------------------------


@pytest.fixture
def login(client):
    def make(user):
        client.force_login(user)
        return client

    return make


@pytest.mark.django_db
def test_notification_page_lists_and_marks_read_without_js(
    login, owner, outsider, workspace_a, workspace_b, source_a, on_commit
):
    make_rule(workspace_a, owner)
    crawl = make_crawl(source_a)
    with on_commit():
        items_event(crawl, new=[make_bid(source_a, title="Road")])
    notification = Notification.objects.get()
    client = login(owner)
    page = client.get(reverse("notifications:list")).content.decode()
    assert "Roads: 1 bid matched" in page
    assert 'class="bell"' in page
    assert "/static/notifications/bell." in page
    response = client.post(reverse("notifications:read", args=[notification.pk]))
    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is not None
    foreign = login(outsider).post(reverse("notifications:read", args=[notification.pk]))
    assert foreign.status_code == 404
    Notification.objects.update(read_at=None)
    login(owner).post(reverse("notifications:read_all"))
    assert not Notification.objects.filter(read_at=None).exists()


@pytest.mark.django_db
def test_alert_rule_pages_create_edit_delete(login, owner, viewer, workspace_a, source_a):
    client = login(owner)
    assert client.get(reverse("notifications:rule_create")).status_code == 200
    bad = client.post(
        reverse("notifications:rule_create"),
        {"name": "Big", "views_min": "-1", "webhook_url": "http://127.0.0.1:9/x"},
    )
    assert bad.status_code == 400
    assert not AlertRule.objects.exists()
    response = client.post(
        reverse("notifications:rule_create"),
        {"name": "Big", "views_min": "100", "source": str(source_a.pk), "is_active": "on"},
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.filter == {"source": [str(source_a.pk)], "views_min": "100"}
    edit = client.get(reverse("notifications:rule_edit", args=[rule.pk])).content.decode()
    assert 'value="100"' in edit
    client.post(
        reverse("notifications:rule_edit", args=[rule.pk]), {"name": "Bigger", "views_min": "500"}
    )
    rule.refresh_from_db()
    assert (rule.name, rule.filter, rule.is_active) == ("Bigger", {"views_min": "500"}, False)
    client.post(
        reverse("notifications:rule_edit", args=[rule.pk]),
        {"name": "Cancelled", "status": ["cancelled", "closed"], "currency": "krw"},
    )
    rule.refresh_from_db()
    assert rule.filter == {"status": ["cancelled", "closed"], "currency": "krw"}
    wrong = client.post(
        reverse("notifications:rule_edit", args=[rule.pk]), {"name": "X", "currency": "XYZ"}
    )
    assert wrong.status_code == 400
    denied = login(viewer).post(reverse("notifications:rule_delete", args=[rule.pk]))
    assert denied.status_code == 403
    login(owner).post(reverse("notifications:rule_delete", args=[rule.pk]))
    assert not AlertRule.objects.exists()
