"""Apprise channels: URLs of the allowed services parse and save, the SSRF guard refuses private
targets at save and at send (the connect-time hook too), real sends through Apprise to a local
receiver (in-process and through the real worker), retries and the dead letter, write-only
secrets, and the fanouts (alert rules, crawl problems) that reach channels."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from crawls import events
from crawls import services as crawl_services
from crawls.models import Crawl
from notifications import channel_urls, channels, fanout, services
from notifications.models import Channel, ChannelDelivery, Notification
from tests.clients import invalid_fields
from tests.factories import make_bid, make_source

TIMEOUT = 30
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"
SECRETS = ("TIiajkdnlazkcOXrIdevi7FQ", "s3cr3t-pw")
SERVICE_URLS = {
    "slack": SLACK,
    "discord": "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "tgram": "tgram://123456789:abcdefg_hijklmnop/12315544/",
    "workflows": "workflows://prod-00.westus.logic.azure.com:443/2f3a/abcdef123",
    "ntfy": "ntfy://forest-alerts",
    "matrixs": "matrixs://forest:s3cr3t-pw@93.184.215.14/#tenders",
}


# --- A local receiver (the json:// target), allowlisted for this process and the worker ----------


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers with the scripted (status, Location) replies, then 200."""

    daemon_threads = True

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        super().__init__((host, int(port)), _Handler)
        self.address = address
        self.reset()

    def reset(self, replies=()):
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.got = threading.Condition()

    def wait_for(self, count: int) -> list[dict]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.requests) >= count, TIMEOUT), self.requests
        return self.requests


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        status, location = server.replies.pop(0) if server.replies else (200, "")
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with server.got:
            server.requests.append(json.loads(body))
            server.got.notify_all()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def _receiver_server():
    """At TEST_CHANNEL_RECEIVER: tests/bootstrap.py allowlisted it and made retries fast."""
    server = Receiver(os.environ["TEST_CHANNEL_RECEIVER"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def receiver(_receiver_server):
    _receiver_server.reset()
    return _receiver_server


def make_channel(workspace, owner, url, **values) -> Channel:
    return channels.channel_create(
        workspace_id=workspace.pk, owner=owner, name=values.pop("name", "Mine"), url=url, **values
    )


def send_all() -> None:
    """What the worker's task does with each due delivery, done here."""
    for delivery_id in ChannelDelivery.objects.values_list("pk", flat=True):
        channels.channel_send(delivery_id=delivery_id)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Saving: services allowed, the guard at save ------------------------------------------------


@pytest.mark.django_db
def test_channel_create_accepts_each_service(owner, workspace_a):
    for service, url in SERVICE_URLS.items():
        channel = make_channel(workspace_a, owner, url, name=service)
        assert channel.url == url
        assert channel.service == service
        for secret in SECRETS:
            assert secret not in channel.display
    assert Channel.objects.get(name="slack").display == "slack://T...2/A...D/T...Q/%23general/"
    assert Channel.objects.get(name="workflows").display.startswith(
        "workflow://prod-00.westus.logic.azure.com:443/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:8080/hook",
        "json://10.0.0.5/hook",
        "jsons://169.254.169.254/latest",
        "json://[::1]:8080/",
        "ntfy://[fd00:ec2::254]/topic",
        "json://localhost/hook",
        "matrix://user:pw@2130706433/#room",  # 127.0.0.1 as one number
        "json://board.example.test/hook",  # resolves to loopback (below)
    ],
)
def test_channel_create_refuses_private_targets(url, owner, workspace_a, as_user, monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # the name's DNS answer: loopback
        return real("127.0.0.1" if host == "board.example.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    response = as_user(owner).post(
        "/api/v1/channels/", {"workspace": workspace_a.pk, "name": "x", "url": url}, format="json"
    )
    assert invalid_fields(response) == {"url"}
    assert "refused" in json.dumps(response.json())
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("windows://", "not allowed"),
        ("syslog://", "not allowed"),
        ("file:///etc/passwd", "not allowed"),
        ("https://example.org/", "not allowed"),
        ("nonsense", "not an Apprise URL"),
        ("json://", "not a valid json URL"),
    ],
)
def test_channel_create_refuses_unknown_and_local_services(url, says, owner, workspace_a, as_user):
    response = as_user(owner).post(
        "/api/v1/channels/", {"workspace": workspace_a.pk, "name": "x", "url": url}, format="json"
    )
    assert invalid_fields(response) == {"url"}
    assert says in json.dumps(response.json())
    assert not Channel.objects.exists()


# --- The API: write-only URL, own channels only, test, deliveries --------------------------------


@pytest.mark.django_db
def test_channel_api_never_returns_the_url(owner, teammate, workspace_a, as_user, sent_tasks):
    client = as_user(owner)
    created = client.post(
        "/api/v1/channels/", {"workspace": workspace_a.pk, "name": "Team", "url": SLACK}, "json"
    )
    assert created.status_code == 201, created.content
    channel_id = created.json()["id"]
    assert created.json()["service"] == "slack"
    listed = client.get("/api/v1/channels/")
    detail = client.get(f"/api/v1/channels/{channel_id}/")
    changed = client.patch(f"/api/v1/channels/{channel_id}/", {"name": "Renamed"}, "json")
    tested = client.post(f"/api/v1/channels/{channel_id}/test/")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    for response in (created, listed, detail, changed, tested):
        assert response.status_code in (200, 201, 202), response.content
        assert "url" not in (response.json().get("results") or [response.json()])[0]
        for secret in SECRETS:
            assert secret not in response.content.decode()
    assert changed.json()["name"] == "Renamed"
    assert "/api/v1/channels/{id}/test/" in schema.json()["paths"]
    # The test message is a delivery like any other, its task enqueued on commit.
    delivery = ChannelDelivery.objects.get()
    assert (delivery.channel_id, delivery.title) == (channel_id, channels.TEST_TITLE)
    assert tested.json()["status"] == "pending"
    # A teammate sees none of Olivia's channels.
    assert as_user(teammate).get(f"/api/v1/channels/{channel_id}/").status_code == 404
    assert as_user(teammate).get("/api/v1/channels/").json()["results"] == []


@pytest.mark.django_db
def test_channel_update_judges_a_new_url(owner, workspace_a, as_user):
    channel = make_channel(workspace_a, owner, SLACK)
    response = as_user(owner).patch(
        f"/api/v1/channels/{channel.pk}/", {"url": "json://10.1.2.3/"}, format="json"
    )
    assert invalid_fields(response) == {"url"}
    channel.refresh_from_db()
    assert channel.url == SLACK


@pytest.mark.django_db
def test_channel_deliveries_list_status_attempts_and_error(
    owner, workspace_a, as_user, receiver, django_assert_num_queries
):
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    receiver.reset(replies=[(500, "")])
    delivery = channels.channel_test(channel=channel)
    send_all()
    client = as_user(owner)
    client.get("/api/v1/channels/")  # the session is loaded once
    # session, user, memberships (scope), the channel, its deliveries
    with django_assert_num_queries(5):
        response = client.get(f"/api/v1/channels/{channel.pk}/deliveries/")
    [row] = response.json()
    assert (row["id"], row["status"], row["attempts"]) == (delivery.pk, "failed", 1)
    assert "500" in row["last_error"]


# --- Sending: real Apprise to a local receiver, retries, dead, refusals -------------------------


@pytest.mark.django_db
def test_channel_send_delivers_title_and_body_through_apprise(owner, workspace_a, receiver):
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    [delivery] = channels.channel_deliveries_create(
        channels=[channel], notification=None, title="Roads: 2 bids matched", body="Road A"
    )
    assert channels.channel_send(delivery_id=delivery.pk) is None
    [received] = receiver.wait_for(1)
    assert (received["title"], received["message"]) == ("Roads: 2 bids matched", "Road A")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("succeeded", 1, "")


@pytest.mark.django_db
def test_channel_send_retries_with_backoff_then_goes_dead(owner, workspace_a, receiver, settings):
    assert settings.CHANNEL_MAX_ATTEMPTS == 3
    receiver.reset(replies=[(500, "")] * 3)
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    [delivery] = channels.channel_deliveries_create(
        channels=[channel], notification=None, title="t", body="b"
    )
    retries = [channels.channel_send(delivery_id=delivery.pk)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    time.sleep(retries[-1])
    retries.append(channels.channel_send(delivery_id=delivery.pk))
    time.sleep(retries[-1])
    retries.append(channels.channel_send(delivery_id=delivery.pk))
    assert retries == [0.2, 0.4, None]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert "500" in delivery.last_error
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_channel_send_refuses_a_target_refused_now(owner, workspace_a, receiver):
    """A row whose host the guard refuses now (a DNS change, an allowlist entry removed) goes
    dead at once with "refused", nothing sent."""
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    url = f"json://forest:s3cr3t-pw@127.0.0.1:{unused_port()}/hook"
    Channel.objects.filter(pk=channel.pk).update(url=url)  # bypassing the service
    [delivery] = channels.channel_deliveries_create(
        channels=[Channel.objects.get()], notification=None, title="t", body="b"
    )
    assert channels.channel_send(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error.startswith("refused: loopback address 127.0.0.1")
    assert "s3cr3t-pw" not in delivery.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_channel_send_guard_refuses_a_redirect_to_a_private_address(owner, workspace_a, receiver):
    """The connect-time hook judges every connection Apprise's `requests` opens."""
    elsewhere = f"http://127.0.0.1:{unused_port()}/internal"
    receiver.reset(replies=[(307, elsewhere)])
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    [delivery] = channels.channel_deliveries_create(
        channels=[channel], notification=None, title="t", body="b"
    )
    assert channels.channel_send(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error.startswith("refused: loopback address 127.0.0.1")
    assert len(receiver.requests) == 1


def test_redact_hides_every_secret_piece():
    parsed = channel_urls.channel_url_parse(SERVICE_URLS["matrixs"])
    text = f"could not reach {parsed.url} as forest with s3cr3t-pw"
    redacted = channel_urls.redact(text, url=parsed.url, display=parsed.display)
    assert "s3cr3t-pw" not in redacted
    assert parsed.display in redacted


@pytest.mark.django_db
def test_channel_sweep_resends_lost_deliveries(owner, workspace_a, sent_tasks, settings):
    settings.CHANNEL_SWEEP_GRACE_SECONDS = 0
    channel = make_channel(workspace_a, owner, SLACK)
    [delivery] = channels.channel_deliveries_create(
        channels=[channel], notification=None, title="t", body="b"
    )
    assert channels.channel_sweep() == [delivery.pk]
    assert sent_tasks == [("notifications.channel_send", [delivery.pk])]


# --- Fanouts: alert rules and crawl problems ----------------------------------------------------


@pytest.mark.django_db
def test_alert_rule_channels_only_the_owners_active_ones(
    owner, teammate, workspace_a, workspace_b, outsider, as_user
):
    mine = make_channel(workspace_a, owner, SLACK)
    off = make_channel(workspace_a, owner, SLACK, is_active=False)
    theirs = make_channel(workspace_a, teammate, SLACK)
    client = as_user(owner)
    rule = {"workspace": workspace_a.pk, "name": "Roads", "filter": {"search": "road"}}
    for bad in (off, theirs):
        response = client.post("/api/v1/alert-rules/", {**rule, "channels": [bad.pk]}, "json")
        assert invalid_fields(response) == {"channels"}
    elsewhere = make_channel(workspace_b, outsider, SLACK)
    response = client.post("/api/v1/alert-rules/", {**rule, "channels": [elsewhere.pk]}, "json")
    assert invalid_fields(response) == {"channels"}
    assert not services.AlertRule.objects.exists()
    created = client.post("/api/v1/alert-rules/", {**rule, "channels": [mine.pk]}, "json")
    assert created.status_code == 201, created.content
    assert created.json()["channels"] == [mine.pk]
    rule_id = created.json()["id"]
    cleared = client.patch(f"/api/v1/alert-rules/{rule_id}/", {"channels": []}, "json")
    assert cleared.json()["channels"] == []


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.mark.django_db
def test_alert_match_creates_channel_deliveries(owner, workspace_a, on_commit, sent_tasks):
    source = make_source(workspace_a, "Board")
    channel = make_channel(workspace_a, owner, SLACK)
    make_channel(workspace_a, owner, SLACK, name="not on the rule")
    rule = services.alert_rule_create(
        workspace_id=workspace_a.pk, owner=owner, name="Roads", filter={"search": "road"}
    )
    channels.alert_rule_channels_set(rule=rule, channels=[channel])
    crawl = crawl_services.crawl_start(source=source, user=owner, workers=0)
    bid = make_bid(source, title="Road repair")
    with on_commit():
        services.alert_match_batch(
            crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[bid.pk], changed=[]
        )
    delivery = ChannelDelivery.objects.get()
    notification = Notification.objects.get(kind=Notification.Kind.ALERT_MATCHED)
    assert (delivery.channel, delivery.notification) == (channel, notification)
    assert delivery.title == notification.title
    assert fanout.absolute(notification.link) in delivery.body
    assert ("notifications.channel_send", [delivery.pk]) in sent_tasks


@pytest.mark.django_db
def test_crawl_problems_reach_only_channels_that_asked(
    owner, teammate, workspace_a, on_commit, sent_tasks
):
    source = make_source(workspace_a, "Board")
    asked = make_channel(workspace_a, owner, SLACK, crawl_problems=True)
    make_channel(workspace_a, owner, SLACK, name="quiet")
    make_channel(workspace_a, owner, SLACK, name="off", crawl_problems=True, is_active=False)
    make_channel(workspace_a, teammate, SLACK, name="member's", crawl_problems=True)
    crawl = crawl_services.crawl_start(source=source, user=None, workers=0)
    with on_commit():
        Crawl.objects.filter(pk=crawl.pk).update(status="failed", error="no page")
        events.event_append(
            crawl_id=crawl.pk, workspace_id=workspace_a.pk, type=events.FAILED, payload={}
        )
    delivery = ChannelDelivery.objects.get()
    assert delivery.channel == asked
    assert delivery.notification.kind == Notification.Kind.CRAWL_FAILED


# --- Through the real worker --------------------------------------------------------------------


def wait_for_status(delivery_id: int, status: str) -> ChannelDelivery:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        delivery = ChannelDelivery.objects.get(pk=delivery_id)
        if delivery.status == status:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"delivery {delivery_id} still {delivery.status}")


@pytest.mark.django_db(transaction=True)
def test_channel_message_is_retried_and_delivered_by_the_worker(
    celery_worker, receiver, owner, workspace_a
):
    receiver.reset(replies=[(503, "")])  # the first attempt fails, the retry succeeds
    channel = make_channel(workspace_a, owner, f"json://{receiver.address}/hook")
    delivery = channels.channel_test(channel=channel)
    requests = receiver.wait_for(2)
    delivery = wait_for_status(delivery.pk, "succeeded")
    assert delivery.attempts == 2
    assert requests[-1]["title"] == channels.TEST_TITLE


# --- Admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_the_display_never_the_url(owner, workspace_a, client):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    channel = make_channel(workspace_a, owner, SERVICE_URLS["matrixs"])
    client.force_login(owner)
    pages = [
        client.get(reverse("admin:notifications_channel_changelist")),
        client.get(reverse("admin:notifications_channel_change", args=[channel.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert channel.display in page.content.decode()
        assert "s3cr3t-pw" not in page.content.decode()


# --- Dashboard -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_channels_page_adds_tests_and_deletes(owner, workspace_a, client, sent_tasks):
    client.force_login(owner)
    page = reverse("notifications:channels")
    refused = client.post(page, {"name": "Home", "url": "json://192.168.1.1/"})
    assert refused.status_code == 400
    assert "refused" in refused.content.decode()
    assert not Channel.objects.exists()
    url = SERVICE_URLS["matrixs"]
    assert client.post(page, {"name": "Room", "url": url}).status_code == 302
    channel = Channel.objects.get()
    listed = client.get(page).content.decode()
    assert channel.display in listed
    assert "s3cr3t-pw" not in listed
    client.post(reverse("notifications:channel_test", args=[channel.pk]))
    assert ChannelDelivery.objects.get().title == channels.TEST_TITLE
    client.post(reverse("notifications:channel_delete", args=[channel.pk]))
    assert not Channel.objects.exists()


@pytest.mark.django_db
def test_rule_form_offers_and_saves_only_the_owners_active_channels(
    owner, teammate, workspace_a, client
):
    mine = make_channel(workspace_a, owner, SLACK, name="Team Slack")
    off = make_channel(workspace_a, owner, SLACK, name="Old Slack", is_active=False)
    theirs = make_channel(workspace_a, teammate, SLACK, name="Their Slack")
    client.force_login(owner)
    page = client.get(reverse("notifications:rule_create")).content.decode()
    assert "Team Slack" in page
    assert "Old Slack" not in page
    assert "Their Slack" not in page
    form = {"name": "Roads", "search": "road", "is_active": "on"}
    for bad in (off, theirs):
        refused = client.post(reverse("notifications:rule_create"), {**form, "channels": [bad.pk]})
        assert refused.status_code == 400
        assert list(refused.context["form"].errors) == ["channels"]
    assert not services.AlertRule.objects.exists()
    saved = client.post(reverse("notifications:rule_create"), {**form, "channels": [mine.pk]})
    assert saved.status_code == 302
    rule = services.AlertRule.objects.get()
    assert list(rule.channels.all()) == [mine]
    edit = reverse("notifications:rule_edit", args=[rule.pk])
    assert (
        "checked" in client.get(edit).content.decode().split("Team Slack")[0].rsplit("<input", 1)[1]
    )
    client.post(edit, form)  # no channel ticked: the rule tells none
    assert not rule.channels.exists()


@pytest.mark.django_db
def test_channel_api_replaces_refuses_and_deletes(owner, workspace_a, as_user, sent_tasks):
    client = as_user(owner)
    body = {"workspace": workspace_a.pk, "name": "Team", "url": SLACK}
    channel_id = client.post("/api/v1/channels/", body, "json").json()["id"]
    replaced = client.put(
        f"/api/v1/channels/{channel_id}/", {**body, "name": "Bids", "is_active": False}, "json"
    )
    assert replaced.status_code == 200, replaced.content
    assert (replaced.json()["name"], replaced.json()["is_active"]) == ("Bids", False)
    refused = client.put(
        f"/api/v1/channels/{channel_id}/", {**body, "url": "json://127.0.0.1/hook"}, "json"
    )
    assert invalid_fields(refused) == {"url"}
    assert Channel.objects.get().name == "Bids"  # the refused change changed nothing
    inactive = client.post(f"/api/v1/channels/{channel_id}/test/")
    assert invalid_fields(inactive) == {"is_active"}
    assert not ChannelDelivery.objects.exists()
    assert client.delete(f"/api/v1/channels/{channel_id}/").status_code == 204
    assert not Channel.objects.exists()


def test_channel_url_longer_than_the_bound_is_refused_before_apprise_reads_it():
    too_long = "json://example.org/" + "a" * channel_urls.URL_MAX_LENGTH
    with pytest.raises(channel_urls.ChannelURLError, match="longer than"):
        channel_urls.channel_url_parse(too_long)
