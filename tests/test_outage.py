"""PostgreSQL or Redis unreachable: 503 with Retry-After naming the part, never 500.

Real daphne processes are pointed at closed ports (the session's own servers keep running);
in-process, the API's throttles are pointed at a closed Redis port to hold every operation to
the 503 the schema documents.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from django.db import OperationalError
from django.test import Client, RequestFactory
from drf_spectacular.generators import SchemaGenerator
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from crawls import services
from crawls.api import throttles
from project import urls as project_urls
from tests.clients import bearer
from tests.processes import Program, free_port, http_get, program_env, start_daphne


def daphne(tmp_path, **env: str) -> Program:
    return start_daphne(
        program_env(DB_POOL_TIMEOUT="1", OUTAGE_RETRY_AFTER_SECONDS="7", **env),
        tmp_path / "daphne.log",
    )


def closed_port() -> int:
    return free_port()  # bound once, then released: nothing listens there


def get(server: Program, path: str, **headers: str):
    """(status, headers, body) of a GET to `server`."""
    request = urllib.request.Request(server.base_url + path, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def assert_unavailable_api(answer, part: str) -> None:
    status, headers, body = answer
    assert status == 503, body[:300]
    assert headers["Retry-After"] == "7"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "error": {"code": "unavailable", "message": f"{part} unavailable", "details": {}}
    }


def assert_unavailable_page(answer, part: str) -> None:
    status, headers, body = answer
    assert status == 503, body[:300]
    assert headers["Retry-After"] == "7"
    assert headers["Content-Type"].startswith("text/html")
    assert f"{part.capitalize()} unavailable" in body.decode()


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_answers_503_and_healthz_still_200(tmp_path):
    url = f"postgresql://forest:secret@127.0.0.1:{closed_port()}/forest"
    server = daphne(tmp_path, DATABASE_URL=url)
    try:
        assert http_get(f"{server.base_url}/healthz")[0] == 200
        token = "fst_0123abcd" + "x" * 40
        assert_unavailable_api(
            get(server, "/api/v1/bids/", Authorization=f"Bearer {token}"), "database"
        )
        # Pages read the session (and its user) from the database: a signed-in browser.
        cookie = {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"}
        assert_unavailable_page(get(server, "/", **cookie), "database")
        assert_unavailable_page(get(server, "/admin/", **cookie), "database")
        assert_unavailable_api(get(server, "/api/v1/workspaces/", **cookie), "database")
        status, _, body = get(server, "/readyz")
        assert status == 503
        assert "postgres" in json.loads(body)["failing"]
    finally:
        server.stop()
    assert "Traceback" not in server.output()


@pytest.mark.django_db(transaction=True)
def test_a_redis_outage_answers_503_and_healthz_still_200(tmp_path, owner, workspace_a):
    _, token = services.token_create(user=owner, workspace=workspace_a, name="outage")
    browser = Client()
    browser.force_login(owner)
    session = browser.cookies["sessionid"].value
    server = daphne(tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    try:
        assert http_get(f"{server.base_url}/healthz")[0] == 200
        # Every API request is counted in Redis (the throttles).
        assert_unavailable_api(
            get(server, "/api/v1/bids/", Authorization=f"Bearer {token}"), "redis"
        )
        # The analytics page reads its cache in Redis.
        page = get(server, "/analytics/", Cookie=f"sessionid={session}")
        assert_unavailable_page(page, "redis")
        status, _, body = get(server, "/readyz")
        assert status == 503
        assert "redis" in json.loads(body)["failing"]
    finally:
        server.stop()
    assert "Traceback" not in server.output()


# --- In-process: every operation, and errors raised outside views ---------------------------------


@pytest.fixture
def redis_down(monkeypatch):
    """The throttles' Redis at a closed port: a real refused connection on every API call."""
    storage = RedisStorage(f"redis://127.0.0.1:{closed_port()}/0", key_prefix="down")
    monkeypatch.setattr(throttles, "limiter", lambda: SlidingWindowCounterRateLimiter(storage))


@pytest.mark.django_db
def test_every_operation_answers_503_when_redis_is_down(redis_down, owner, workspace_a):
    api = bearer(owner, workspace_a)
    schema = SchemaGenerator().get_schema(request=None, public=True)
    checked = 0
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            assert "503" in operation["responses"], (method, path)
            response = getattr(api, method)(url, {}, format="json")
            assert response.status_code == 503, (method, path, response.content[:200])
            assert response["Retry-After"]
            assert response.json()["error"]["message"] == "redis unavailable"
            checked += 1
    assert checked > 40


def test_an_outage_raised_outside_a_view_reaches_the_500_handler_as_a_503(settings):
    """A middleware's error (a session saved while the database is down) is not a view's:
    Django's 500 handler, called while the exception is handled, answers the 503."""
    settings.OUTAGE_RETRY_AFTER_SECONDS = 3
    for path, content_type in (("/api/v1/bids/", "application/json"), ("/", "text/html")):
        request = RequestFactory().get(path)
        try:
            raise OperationalError("connection refused")
        except OperationalError:
            response = project_urls.handler500(request)
        assert response.status_code == 503
        assert response["Retry-After"] == "3"
        assert response["Content-Type"].startswith(content_type)
    request = RequestFactory().get("/")
    try:
        raise RuntimeError("not an outage")
    except RuntimeError:
        assert project_urls.handler500(request).status_code == 500
