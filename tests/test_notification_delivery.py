"""Alert emails through the worker: a crawl batch only stores the email and enqueues its task; the
real worker sends it over SMTP to a local server, retries SMTP errors with backoff, gives up
after EMAIL_MAX_ATTEMPTS; the sweep re-sends an email whose task was lost. And the module
boundaries that keep notifications free of import cycles."""

from __future__ import annotations

import ast
import datetime as dt
import email
import os
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from crawls import events
from crawls import services as crawl_services
from notifications import emails, services, tasks
from notifications.models import EmailDelivery, Notification
from tests.factories import make_bid, make_source

TIMEOUT = 30


# --- A local SMTP server: the workers' EMAIL_HOST/EMAIL_PORT (tests/bootstrap.py) ---------------


class SmtpServer:
    """Accepts every message, unless a scripted reply (e.g. "451 …") is due first."""

    def __init__(self, address: str):
        host, port = address.rsplit(":", 1)
        self.controller = Controller(self, hostname=host, port=int(port))
        self.reset()

    def reset(self, replies=()):
        self.replies = list(replies)
        self.attempts = 0
        self.messages: list[email.message.Message] = []
        self.got = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        reply = self.replies.pop(0) if self.replies else "250 OK"
        with self.got:
            self.attempts += 1
            if reply.startswith("250"):
                self.messages.append(email.message_from_bytes(envelope.content))
            self.got.notify_all()
        return reply

    def wait_for(self, *, attempts: int) -> list[email.message.Message]:
        with self.got:
            assert self.got.wait_for(lambda: self.attempts >= attempts, TIMEOUT), self.attempts
        return self.messages


@pytest.fixture(scope="session")
def _smtp_server():
    server = SmtpServer(os.environ["TEST_SMTP_SERVER"])
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def smtp(_smtp_server):
    _smtp_server.reset()
    return _smtp_server


# --- Helpers -------------------------------------------------------------------------------------


def make_rule(workspace, owner, **values):
    values = {"name": "Roads", "filter": {"search": "road"}, "email": "alerts@example.org"} | values
    return services.alert_rule_create(workspace_id=workspace.pk, owner=owner, **values)


def match_one_bid(workspace, title="Road works"):
    """A crawl whose committed batch holds one new bid matching "road"."""
    source = make_source(workspace, "Board")
    crawl = crawl_services.crawl_start(source=source, user=None, workers=0)
    bid = make_bid(source, title=title)
    return crawl, bid


def wait_for_status(delivery_id: int, status: str) -> EmailDelivery:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        delivery = EmailDelivery.objects.get(pk=delivery_id)
        if delivery.status == status:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"email {delivery_id} still {delivery.status}")


# --- The crawl's side: store and enqueue, never send ---------------------------------------------


@pytest.mark.django_db
def test_alert_batch_stores_the_email_and_does_not_send_it(
    owner, workspace_a, django_capture_on_commit_callbacks, mailoutbox
):
    make_rule(workspace_a, owner)
    crawl, bid = match_one_bid(workspace_a)
    with django_capture_on_commit_callbacks(execute=True):
        events.event_append(
            crawl_id=crawl.pk,
            workspace_id=workspace_a.pk,
            type=events.ITEMS,
            payload={"new": [bid.pk], "changed": []},
        )
    assert mailoutbox == []  # the subscriber (the crawl worker's batch path) sent nothing
    delivery = EmailDelivery.objects.get()
    notification = Notification.objects.get(kind="alert_matched")
    assert (delivery.status, delivery.attempts, delivery.to) == ("pending", 0, "alerts@example.org")
    assert delivery.notification == notification
    assert delivery.subject == "[Forest] Roads: 1 bid matched"
    assert f"/bids/?search=road&crawl={crawl.pk}" in delivery.body


# --- The worker's side ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_alert_email_is_sent_by_the_worker_and_retried_after_an_smtp_error(
    celery_worker, smtp, owner, workspace_a
):
    smtp.reset(replies=["451 4.3.0 Try again later"])
    make_rule(workspace_a, owner)
    crawl, bid = match_one_bid(workspace_a)
    services.alert_match_batch(
        crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[bid.pk], changed=[]
    )
    messages = smtp.wait_for(attempts=2)
    delivery = wait_for_status(EmailDelivery.objects.get().pk, "succeeded")
    assert (delivery.attempts, delivery.last_error) == (2, "")
    assert delivery.delivered_at is not None
    assert len(messages) == 1
    assert messages[0]["To"] == "alerts@example.org"
    assert messages[0]["Subject"] == "[Forest] Roads: 1 bid matched"
    assert f"/bids/?search=road&crawl={crawl.pk}" in messages[0].get_payload()


@pytest.mark.django_db(transaction=True)
def test_alert_email_goes_dead_after_max_attempts(celery_worker, smtp, owner, workspace_a):
    smtp.reset(replies=["451 4.3.0 Try again later"] * 5)
    make_rule(workspace_a, owner)
    crawl, bid = match_one_bid(workspace_a)
    services.alert_match_batch(
        crawl_id=crawl.pk, workspace_id=workspace_a.pk, new=[bid.pk], changed=[]
    )
    delivery = wait_for_status(EmailDelivery.objects.get().pk, "dead")
    assert delivery.attempts == 3  # EMAIL_MAX_ATTEMPTS of the test workers
    assert delivery.last_error.startswith("SMTPDataError: (451")
    assert smtp.attempts == 3
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_email_sweep_resends_an_email_whose_task_was_lost(celery_worker, smtp, workspace_a):
    lost = EmailDelivery.objects.create(
        workspace=workspace_a,
        to="lost@example.org",
        subject="[Forest] Lost",
        body="Found again.",
        next_attempt_at=timezone.now() - dt.timedelta(hours=1),
    )
    recent = EmailDelivery.objects.create(
        workspace=workspace_a, to="recent@example.org", subject="[Forest] Recent", body="."
    )
    assert tasks.email_sweep_task() == [lost.pk]
    assert wait_for_status(lost.pk, "succeeded").attempts == 1
    assert [m["To"] for m in smtp.wait_for(attempts=1)] == ["lost@example.org"]
    assert EmailDelivery.objects.get(pk=recent.pk).status == "pending"


@pytest.mark.django_db
def test_email_the_backend_cannot_send_is_dead_at_once(workspace_a, mailoutbox):
    broken = EmailDelivery.objects.create(
        workspace=workspace_a, to="a@example.org", subject="Two\nlines", body="."
    )
    assert emails.email_send(delivery_id=broken.pk) is None
    broken.refresh_from_db()
    assert (broken.status, broken.attempts) == ("dead", 1)
    assert broken.last_error.startswith("BadHeaderError")
    assert emails.email_send(delivery_id=broken.pk) is None  # dead stays dead
    broken.refresh_from_db()
    assert broken.attempts == 1
    assert mailoutbox == []


def test_email_backoff_doubles(settings):
    settings.EMAIL_BACKOFF_SECONDS = 60
    assert [emails.email_backoff(attempts=n) for n in (1, 2, 3)] == [60, 120, 240]


# --- Module boundaries ---------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
            modules.add(node.module or "")
    return modules


def test_only_the_celery_adapters_import_notifications_tasks():
    app = Path(__file__).resolve().parent.parent / "notifications"
    importers = sorted(
        path.name
        for path in app.glob("*.py")
        if "notifications.tasks" in imported_modules(path) and path.name != "tasks.py"
    )
    assert importers == []
    assert "notifications.services" not in imported_modules(app / "tasks.py")
