"""The API's contract as a whole: a warning-free OpenAPI schema, self-hosted docs, the error
envelope for unknown paths and crashes, 401 with a Bearer challenge, CORS and CSRF, and every
documented response produced by some test of the suite."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from limits import RateLimitItemPerSecond
from rest_framework.test import APIClient

from crawls import selectors, services
from crawls.api.throttles import CallerRateThrottle, WorkspaceRateThrottle, parse_rate
from crawls.models import Membership
from project import urls as project_urls
from tests.clients import bearer
from tests.responses import PRODUCED, documented

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.org"


@pytest.fixture
def owner_token(workspace_a, owner):
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="contract")
    return raw


# --- OpenAPI schema and docs ------------------------------------------------------------------


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    GENERATOR_STATS.reset()  # warnings of earlier generations in this process are not ours
    out = tmp_path / "schema.json"
    try:
        call_command(
            "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
            "--file", str(out),
        )  # fmt: skip
    except CommandError as exc:
        found = "\n".join([*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache])
        pytest.fail(f"{exc}:\n{found}")
    schema = json.loads(out.read_text())
    paths = schema["paths"]
    for path in (
        "/api/v1/workspaces/",
        "/api/v1/workspaces/{id}/",
        "/api/v1/members/",
        "/api/v1/members/{id}/",
        "/api/v1/tokens/",
        "/api/v1/tokens/{id}/",
        "/api/v1/tokens/{id}/revoke/",
    ):
        assert path in paths, path
    assert "bearerToken" in schema["components"]["securitySchemes"]
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    created = paths["/api/v1/tokens/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/TokenCreated")
    listed = schema["components"]["schemas"]["Token"]["properties"]
    assert "token" not in listed
    assert "key_hash" not in listed


def test_the_schema_is_served(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/members/" in json.loads(response.content)["paths"]


def test_swagger_ui_is_served_from_our_own_static_files(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith(f"/{settings.STATIC_URL.lstrip('/')}drf_spectacular_sidecar/"), (
            asset
        )
        assert api.get(asset).status_code == 200, asset
    assert "cdn." not in html
    assert "unpkg" not in html


# --- The error envelope -----------------------------------------------------------------------


def test_an_unknown_api_path_answers_404_in_the_envelope(api, settings):
    settings.DEBUG = False
    for path in ("/api/v1/nope", "/api/v1/nope/", "/api/nope/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "error": {"code": "not_found", "message": "No such API endpoint.", "details": {}}
        }


def test_an_unknown_page_still_answers_djangos_404_page(client, settings):
    settings.DEBUG = False
    response = client.get("/nope/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_crash_in_a_view_answers_500_in_the_envelope(api, owner, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database on fire: secret detail")

    monkeypatch.setattr(selectors, "workspace_ids_for", broken)
    api.force_login(owner)
    response = api.get("/api/v1/workspaces/")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "server_error", "message": "Internal server error.", "details": {}}
    }
    assert "secret detail" not in response.content.decode()
    assert any(r.exc_info and "on fire" in str(r.exc_info[1]) for r in caplog.records)


def test_the_500_handler_answers_api_paths_in_the_envelope():
    request = RequestFactory().get("/api/v1/anything/")
    response = project_urls.handler500(request)
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"


def test_unauthenticated_callers_get_401_with_a_bearer_challenge(api):
    response = api.get("/api/v1/members/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
    assert response.json()["error"]["code"] == "not_authenticated"


def test_every_operation_that_documents_401_answers_anonymous_callers_401(api):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    checked = 0
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            if "401" not in operation["responses"]:
                continue
            response = getattr(api, method)(url, {}, format="json")
            assert response.status_code == 401, (method, path)
            assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
            assert response.json()["error"]["code"] == "not_authenticated"
            checked += 1
    assert checked > 30


def test_validation_errors_name_the_field(api, owner):
    api.force_login(owner)
    response = api.post("/api/v1/workspaces/", {"name": ""})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert list(body["details"]) == ["name"]
    assert "name" in body["message"]


# --- Throttling -------------------------------------------------------------------------------


def _refused(response) -> None:
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "throttled"


def test_each_token_has_its_own_rate(monkeypatch, workspace_a, owner, teammate):
    monkeypatch.setattr(CallerRateThrottle, "rate", "3/min")
    first, second = bearer(owner, workspace_a), bearer(teammate, workspace_a)
    for _ in range(3):
        assert first.get("/api/v1/bids/").status_code == 200
    _refused(first.get("/api/v1/bids/"))
    _refused(first.get("/api/v1/sources/"))  # the caller, not the endpoint, is counted
    assert second.get("/api/v1/bids/").status_code == 200


def test_the_tokens_of_a_workspace_share_its_rate(
    monkeypatch, workspace_a, workspace_b, owner, teammate, outsider
):
    monkeypatch.setattr(WorkspaceRateThrottle, "rate", "4/min")
    first, second = bearer(owner, workspace_a), bearer(teammate, workspace_a)
    for client in (first, second, first, second):
        assert client.get("/api/v1/bids/").status_code == 200
    _refused(second.get("/api/v1/bids/"))
    _refused(first.get("/api/v1/bids/"))
    assert bearer(outsider, workspace_b).get("/api/v1/bids/").status_code == 200
    # Session callers are counted per caller only.
    browser = APIClient()
    browser.force_login(owner)
    assert browser.get("/api/v1/bids/").status_code == 200


def test_session_callers_are_counted_per_user(monkeypatch, workspace_a, owner, teammate):
    monkeypatch.setattr(CallerRateThrottle, "rate", "2/min")
    olivia, tomas = APIClient(), APIClient()
    olivia.force_login(owner)
    tomas.force_login(teammate)
    assert olivia.get("/api/v1/workspaces/").status_code == 200
    assert olivia.get("/api/v1/workspaces/").status_code == 200
    _refused(olivia.get("/api/v1/workspaces/"))
    assert tomas.get("/api/v1/workspaces/").status_code == 200


def test_rates_are_read_in_drfs_form():
    assert parse_rate("1200/min") == RateLimitItemPerSecond(1200, 60)
    assert parse_rate("5/s") == RateLimitItemPerSecond(5, 1)
    assert parse_rate("100/hour") == RateLimitItemPerSecond(100, 3600)
    assert parse_rate("1/day") == RateLimitItemPerSecond(1, 86400)


# --- CORS -------------------------------------------------------------------------------------


def test_cors_allows_the_configured_origin_only(api, settings, owner_token):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    preflight = {
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization, content-type",
    }
    allowed = api.options("/api/v1/members/", HTTP_ORIGIN=ORIGIN, **preflight)
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in allowed["Access-Control-Allow-Headers"]
    refused = api.options("/api/v1/members/", HTTP_ORIGIN="https://evil.example", **preflight)
    assert "Access-Control-Allow-Origin" not in refused

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    response = api.get("/api/v1/members/", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    other = api.get("/api/v1/members/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


# --- CSRF -------------------------------------------------------------------------------------


def test_a_session_post_without_the_csrf_token_is_refused(owner):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(owner)
    response = api.post("/api/v1/workspaces/", {"name": "Forged"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]
    assert not owner.memberships.exists()


def test_a_session_post_with_the_csrf_token_is_accepted(owner):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(owner)
    secret = "a" * 32
    api.cookies[settings.CSRF_COOKIE_NAME] = secret
    response = api.post("/api/v1/workspaces/", {"name": "Fine"}, HTTP_X_CSRFTOKEN=secret)
    assert response.status_code == 201


def test_a_bearer_token_post_needs_no_csrf_token(workspace_a, owner_token, outsider):
    api = APIClient(enforce_csrf_checks=True)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    response = api.post("/api/v1/members/", {"workspace": workspace_a.id, "username": "oscar"})
    assert response.status_code == 201
    assert Membership.objects.filter(workspace=workspace_a, user=outsider).exists()


# --- Documented responses -----------------------------------------------------------------------


@pytest.mark.after_everything
def test_every_documented_response_is_produced_by_some_test():
    """Each (path, method, status) in the schema was answered to some test of this session
    (collected only with the whole suite, and run last: tests/conftest.py)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = sorted(documented(schema) - PRODUCED)
    assert not missing, "documented but produced by no test:\n" + "\n".join(map(str, missing))
