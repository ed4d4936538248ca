"""HTTP served the fast way: `manage.py run` puts nginx on the one port, pages and the API go to
gunicorn, WebSockets and the SSE stream to daphne. Checked through that port as a user meets it:
a page, an API call, a login whose session opens a WebSocket, an SSE stream that delivers each
event while it is open, a foreign origin refused, an X-Forwarded-For the client cannot choose.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import RequestFactory
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from crawls import events, realtime, services
from project import forwarded, serving
from tests.factories import make_source
from tests.processes import BASE_DIR, Program, free_port, http_status, program_env, python

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30  # generous: only to stop a broken stream from hanging the suite
PASSWORD = "proxy-pass-1234"  # a test persona's


@pytest.fixture(scope="module")
def served(django_db_setup, tmp_path_factory):
    """`manage.py run` on the test database: nginx on `port`, gunicorn and daphne behind it."""
    port = free_port()
    env = program_env(
        PORT=str(port), DEMO_BOARD_ADDRESS="", API_RATE_CALLER="3/min", WORKER_CONCURRENCY="1"
    )
    program = Program(
        python("manage.py", "run"), env=env, log=tmp_path_factory.mktemp("run") / "run.log"
    )
    program.port = port
    program.base_url = f"http://127.0.0.1:{port}"
    program.wait_until(
        lambda: "Forest is running" in program.output(), what="manage.py run", timeout=120
    )
    yield program
    assert program.stop() in (0, 130, 143, -15), program.output()[-4000:]


def request(served, method: str, path: str, *, headers=None, body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def login(served, user) -> str:
    """Sign in through the login form (CSRF and all); the Cookie header of the new session."""
    response, page = request(served, "GET", "/accounts/login/")
    cookies = http.cookies.SimpleCookie(response.getheader("Set-Cookie"))
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = urllib.parse.urlencode(
        {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    )
    response, _ = request(
        served,
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": served.base_url,
            "Referer": f"{served.base_url}/accounts/login/",
        },
    )
    assert response.status == 302, response.status
    session = http.cookies.SimpleCookie(response.getheader("Set-Cookie"))["sessionid"].value
    return f"sessionid={session}"


@pytest.fixture
def member(owner):
    # The server checks passwords with its own (PBKDF2) hasher, not the tests' fast one.
    owner.password = PBKDF2PasswordHasher().encode(PASSWORD, "proxysalt", iterations=1000)
    owner.save(update_fields=["password"])
    return owner


def test_pages_and_the_api_are_answered_by_gunicorn_through_the_one_port(
    served, member, workspace_a
):
    _, raw = services.token_create(user=member, workspace=workspace_a, name="proxy")
    response, body = request(
        served, "GET", "/api/v1/bids/", headers={"Authorization": f"Bearer {raw}"}
    )
    page, html = request(served, "GET", "/accounts/login/")
    assert (response.status, json.loads(body)["results"]) == (200, [])
    assert (page.status, b"csrfmiddlewaretoken" in html) == (200, True)
    assert http_status(f"{served.base_url}/healthz") == 200
    # Served by gunicorn (a WSGIRequest, in honcho's "web" lines), not daphne ("stream").
    request(served, "GET", "/api/v1/bids/?probe=wsgi", headers={"Authorization": "x"})
    served.wait_until(
        lambda: "<WSGIRequest: GET '/api/v1/bids/?probe=wsgi'>" in served.output(),
        what="the 401's log line",
    )
    (line,) = [
        x for x in served.output().splitlines() if "<WSGIRequest: GET '/api/v1/bids/?probe" in x
    ]
    assert line.split("|", 1)[0].split()[-1] == "web"


def test_a_body_over_the_apps_limit_gets_the_apps_413_through_the_proxy(
    served, member, workspace_a
):
    _, raw = services.token_create(user=member, workspace=workspace_a, name="proxy")
    body = json.dumps({"name": "x" * (2 * 1024 * 1024 + 512 * 1024)})  # 2.5 MiB: over 2 MiB
    response, answer = request(
        served,
        "POST",
        "/api/v1/sources/",
        body=body,
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
    )
    assert (response.status, json.loads(answer)["error"]["code"]) == (413, "too_large")


def test_a_session_from_the_login_form_opens_a_websocket(served, member, workspace_a):
    cookie = login(served, member)
    with connect(
        f"ws://127.0.0.1:{served.port}/ws/workspace/",
        origin=served.base_url,
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
    ) as socket:
        snapshot = json.loads(socket.recv(timeout=TIMEOUT))
    page, _ = request(served, "GET", "/", headers={"Cookie": cookie})
    assert snapshot["type"] == "workspace.snapshot"
    assert page.status == 200


def test_a_websocket_from_a_foreign_origin_is_refused_through_the_proxy(served, member):
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{served.port}/ws/workspace/",
            origin="http://evil.example",
            open_timeout=TIMEOUT,
        )
    assert refused.value.response.status_code == 403


def test_the_sse_stream_delivers_each_event_while_it_is_open(served, member, workspace_a):
    crawl = services.crawl_start(source=make_source(workspace_a, "Board"), workers=0)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT)
    path = f"/api/v1/crawls/{crawl.pk}/events/stream"
    conn.request("GET", path, headers={"Cookie": login(served, member)})
    response = conn.getresponse()
    assert (response.status, response.getheader("Content-Type")) == (
        200,
        "text/event-stream; charset=utf-8",
    )
    seen: list[str] = []
    for n in range(2):  # each event arrives before the next is written: nothing is held back
        event = events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.PROGRESS, payload={}
        )
        realtime.flush()
        while f"id: {event.sequence}" not in seen:
            seen.append(response.readline().decode().rstrip("\n"))
        frame = []
        while (line := response.readline().decode().rstrip("\n")) != "":  # to the frame's end
            frame.append(line)
        assert frame[0] == f"event: {events.PROGRESS}", (n, frame)
    events.event_append(
        crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.SUCCEEDED, payload={}
    )
    realtime.flush()
    rest = response.read().decode()
    conn.close()
    assert f"event: {events.SUCCEEDED}" in rest


def test_x_forwarded_for_from_the_client_is_not_believed(served):
    """The anonymous rate (3/min here) counts the address nginx saw, whatever the header says."""
    feed = "/feeds/not-a-token/atom/"
    answers = [
        request(served, "GET", feed, headers={"X-Forwarded-For": f"203.0.113.{n}"})[0].status
        for n in range(4)
    ]
    assert answers == [404, 404, 404, 429]


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    factory = RequestFactory()
    direct = factory.get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.9")
    proxied = factory.get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.9")
    garbage = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="me, not-an-ip")
    for r in (direct, proxied, garbage):
        forwarded.client_address_resolve(r.META)
    assert [r.META["REMOTE_ADDR"] for r in (direct, proxied, garbage)] == [
        "198.51.100.7",
        "203.0.113.9",
        "127.0.0.1",
    ]
    assert not any("HTTP_X_FORWARDED_FOR" in r.META for r in (direct, proxied, garbage))


def test_the_compose_proxy_config_is_the_one_make_run_writes():
    committed = (Path(BASE_DIR) / "deploy" / "nginx.conf").read_text()
    assert committed == serving.compose_proxy_config()
    for location in serving.STREAM_LOCATIONS:
        assert f"location {location} {{" in committed


def test_the_proxy_takes_bodies_the_app_refuses_itself(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
    assert serving.body_limit() == "3072k"  # 2 MiB + 1 MiB: the app's 413 answers first
