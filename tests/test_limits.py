"""Bounded requests: bodies, JSON depth, URL lengths and what one source or alert rule may hold,
refused with a 4xx naming the problem (never a 500) by the API, the dashboard and the admin."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from crawls import bounds
from crawls.api.parsers import BoundedJSONParser, RequestTooLarge
from crawls.api.throttles import CallerRateThrottle
from crawls.demo.board import DEMO_RULES
from crawls.models import Source
from notifications.models import AlertRule
from tests.clients import bearer
from tests.test_admin import source_form
from tests.test_dashboard import source_post

pytestmark = pytest.mark.django_db

START = "https://bids.example.org/notices"
MiB = 1024 * 1024


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def source_body(**values) -> dict:
    return {"name": "Bounded board", "start_urls": [START], "rules": DEMO_RULES, **values}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


@pytest.fixture
def owner_api(owner, workspace_a):
    """Olivia's client, with a bearer token of workspace A."""
    return bearer(owner, workspace_a)


# --- Measuring JSON without recursion -------------------------------------------------------------


def test_text_depth_counts_brackets_outside_strings_only():
    bounds.text_check_depth(deep(32), limit=32)
    with pytest.raises(bounds.TooDeep):
        bounds.text_check_depth(deep(33), limit=32)
    bounds.text_check_depth(json.dumps({"a": ["[[[[", '\\"[[[', {"b": "{{{{"}]}), limit=3)
    with pytest.raises(bounds.TooDeep):
        bounds.text_check_depth(json.dumps({"a": [{"b": ["x"]}]}), limit=3)
    with pytest.raises(bounds.TooDeep, match="deeper than 32"):
        bounds.text_check_depth(deep(100_000))  # no RecursionError on the way


def test_value_depth_is_measured_without_recursion():
    value: list = []
    for _ in range(50_000):  # deeper than Python's recursion limit
        value = [value]
    with pytest.raises(bounds.TooDeep):
        bounds.value_check_depth(value, limit=32)
    bounds.value_check_depth({"a": [{"b": []}]}, limit=4)
    with pytest.raises(bounds.TooDeep):
        bounds.value_check_depth({"a": [{"b": []}]}, limit=3)


# --- Request bodies -------------------------------------------------------------------------------


def test_a_body_over_the_limit_answers_413_naming_the_limit(owner_api, settings):
    assert 2 * MiB == settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # the default
    body = json.dumps(source_body(user_agent="x" * (2 * MiB)))
    error = error_of(owner_api.post("/api/v1/sources/", body, content_type="application/json"), 413)
    assert error["code"] == "too_large"
    assert "2097152 bytes" in error["message"]
    assert not Source.objects.exists()


def test_100000_start_urls_answer_a_4xx_not_a_500(owner_api):
    urls = [f"{START}?page={n}" for n in range(100_000)]
    response = owner_api.post("/api/v1/sources/", source_body(start_urls=urls), format="json")
    assert error_of(response, 413)["code"] == "too_large"


def test_the_parser_reads_no_more_than_the_limit_whatever_the_headers_said(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(json.dumps({"padding": "x" * 5000}).encode())
    with pytest.raises(RequestTooLarge, match="limit of 1000 bytes"):
        BoundedJSONParser().parse(stream)
    assert stream.tell() == 1001
    assert BoundedJSONParser().parse(io.BytesIO(b'{"a": [1]}')) == {"a": [1]}


@pytest.mark.parametrize("levels", [33, 10_000])
def test_json_nested_too_deep_answers_400(owner_api, levels):
    for body in (deep(levels), json.dumps(source_body())[:-1] + f', "rules": {deep(levels)}}}'):
        response = owner_api.post("/api/v1/sources/", body, content_type="application/json")
        error = error_of(response, 400)
        assert error["code"] == "parse_error"
        assert "JSON nested deeper than 32 levels" in error["message"]
    assert not Source.objects.exists()


def test_an_alert_filter_nested_too_deep_answers_400(owner_api, workspace_a):
    body = json.dumps({"workspace": workspace_a.pk, "name": "deep", "filter": {}})
    body = body.replace('"filter": {}', f'"filter": {{"search": {deep(40)}}}')
    response = owner_api.post("/api/v1/alert-rules/", body, content_type="application/json")
    assert "nested deeper" in error_of(response, 400)["message"]
    assert not AlertRule.objects.exists()


def test_too_many_form_fields_answer_400(owner, settings):
    api = APIClient()
    api.force_login(owner)
    fields = "&".join(f"f{n}=1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = api.generic(
        "POST", "/api/v1/workspaces/", fields, content_type="application/x-www-form-urlencoded"
    )
    error = error_of(response, 400)
    assert "fields" in error["message"].lower()
    assert not owner.memberships.exists()


def test_a_multipart_body_is_parsed_or_refused_in_the_envelope(owner):
    api = APIClient()
    api.force_login(owner)
    created = api.post("/api/v1/workspaces/", {"name": "Multipart"}, format="multipart")
    assert created.status_code == 201
    assert created.json()["name"] == "Multipart"
    broken = api.generic(
        "POST", "/api/v1/workspaces/", b"--x\r\nnot a part", content_type="multipart/form-data"
    )
    assert error_of(broken, 400)["code"] == "parse_error"


# --- URLs -----------------------------------------------------------------------------------------


def test_an_overlong_url_answers_414_in_the_envelope_or_as_a_page(owner_api, client, settings):
    assert settings.REQUEST_MAX_URL_LENGTH == 8192
    search = "x" * 8200
    error = error_of(owner_api.get(f"/api/v1/bids/?search={search}"), 414)
    assert error["code"] == "uri_too_long"
    assert "8192 characters" in error["message"]
    assert owner_api.get(f"/api/v1/bids/?search={search[:8000]}").status_code != 414
    page = client.get(f"/sources/?q={search}")
    assert page.status_code == 414
    assert page["Content-Type"].startswith("text/html")


def test_a_preview_url_over_2048_characters_answers_400_naming_it(owner_api):
    url = f"{START}?q={'x' * 2048}"
    response = owner_api.post("/api/v1/sources/preview/", {"rules": DEMO_RULES, "url": url}, "json")
    assert list(error_of(response, 400)["details"]) == ["url"]


# --- What a source holds: one set of caps for the API, the dashboard and the admin ----------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("start_urls", [f"{START}?p={n}" for n in range(101)], "at most 100 start URLs"),
        ("start_urls", [f"{START}?q={'x' * 2048}"], "[0] longer than 2048 characters"),
        ("allowed_hosts", [f"h{n}.example.org" for n in range(101)], "at most 100 allowed hosts"),
        ("include_patterns", [f"/p{n}/" for n in range(21)], "at most 20 are allowed"),
        ("exclude_patterns", ["ok", "x" * 1001], "at most 1000 are allowed"),
        ("rules", {**DEMO_RULES, "note": "x" * 70_000}, "bytes as JSON: at most 65536"),
    ],
)
def test_source_caps_answer_400_naming_the_field(owner_api, field, value, message):
    response = owner_api.post("/api/v1/sources/", source_body(**{field: value}), format="json")
    error = error_of(response, 400)
    assert list(error["details"]) == [field]
    assert any(message in m for m in error["details"][field]), error["details"]
    assert not Source.objects.exists()


def test_source_caps_apply_to_updates_too(owner_api, workspace_a):
    created = owner_api.post("/api/v1/sources/", source_body(), format="json")
    assert created.status_code == 201
    urls = [f"{START}?p={n}" for n in range(101)]
    response = owner_api.patch(
        f"/api/v1/sources/{created.json()['id']}/", {"start_urls": urls}, "json"
    )
    assert error_of(response, 400)["details"] == {"start_urls": ["at most 100 start URLs"]}
    assert Source.objects.get().start_urls == [START]


def test_the_caps_are_settings(owner_api, settings):
    settings.SOURCE_MAX_START_URLS = 2
    urls = [f"{START}?p={n}" for n in range(3)]
    response = owner_api.post("/api/v1/sources/", source_body(start_urls=urls), format="json")
    assert error_of(response, 400)["details"] == {"start_urls": ["at most 2 start URLs"]}


def test_the_dashboard_form_gives_the_same_errors(client, owner, workspace_a):
    client.force_login(owner)
    many = "\n".join(f"{START}?p={n}" for n in range(101))
    response = client.post(reverse("crawls:source_create"), source_post(start_urls=many))
    assert response.status_code == 400
    assert response.context["form"].errors["start_urls"] == ["at most 100 start URLs"]
    response = client.post(reverse("crawls:source_create"), source_post(rules=deep(10_000)))
    assert response.status_code == 400
    assert response.context["form"].errors["rules"] == ["JSON nested deeper than 32 levels"]
    assert not Source.objects.exists()


def test_an_oversized_body_to_a_page_answers_a_413_page(client, owner, workspace_a):
    client.force_login(owner)
    data = source_post(rules="x" * (2 * MiB))
    response = client.post(reverse("crawls:source_create"), data)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "2097152 bytes" in response.content.decode()


def test_too_many_fields_to_a_page_answer_400(client, owner, workspace_a, settings):
    client.force_login(owner)
    data = {f"f{n}": "1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post(reverse("crawls:source_create"), data)
    assert response.status_code == 400
    assert not Source.objects.exists()


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("sam", "sam@example.org", "pw-sam-1")
    client.force_login(user)
    return client


def test_the_admin_gives_the_same_errors(admin_client, workspace_a):
    many = "\n".join(f"{START}?p={n}" for n in range(101))
    response = admin_client.post(
        reverse("admin:crawls_source_add"),
        source_form(workspace_a, start_urls=many, rules=deep(10_000)),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["rules"] == ["JSON nested deeper than 32 levels"]
    response = admin_client.post(
        reverse("admin:crawls_source_add"), source_form(workspace_a, start_urls=many)
    )
    assert response.context["adminform"].form.errors["start_urls"] == ["at most 100 start URLs"]
    assert not Source.objects.exists()


def test_the_admin_alert_rule_form_refuses_a_deep_filter(admin_client, workspace_a, owner):
    form = {
        "workspace": workspace_a.pk, "owner": owner.pk, "name": "deep",
        "filter": f'{{"search": {deep(10_000)}}}', "webhook_url": "", "email": "",
        "is_active": "on",
    }  # fmt: skip
    response = admin_client.post(reverse("admin:notifications_alertrule_add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["filter"] == [
        "JSON nested deeper than 32 levels"
    ]


# --- Alert rule filters ---------------------------------------------------------------------------


def test_alert_filter_caps_answer_400_naming_the_filter(owner_api, workspace_a, settings):
    rule = {"workspace": workspace_a.pk, "name": "many"}
    many = {"department": [f"d{n}" for n in range(101)]}
    response = owner_api.post("/api/v1/alert-rules/", {**rule, "filter": many}, format="json")
    assert error_of(response, 400)["details"] == {"filter": {"department": ["at most 100 values"]}}
    long = {"search": "x" * 1001}
    response = owner_api.post("/api/v1/alert-rules/", {**rule, "filter": long}, format="json")
    details = error_of(response, 400)["details"]
    assert details == {"filter": {"search": ["a value is longer than 1000 characters"]}}
    assert not AlertRule.objects.exists()
    ok = owner_api.post(
        "/api/v1/alert-rules/", {**rule, "filter": {"search": "road"}}, format="json"
    )
    assert ok.status_code == 201


def test_every_request_limit_setting_is_documented(settings):
    source = (settings.BASE_DIR / "project" / "settings.py").read_text()
    block = source.split("# --- Request limits", 1)[1].split("# --- HTTP security", 1)[0]
    names = re.findall(r'env\.\w+\("([A-Z_]+)"', block)
    assert len(names) >= 10
    readme = (settings.BASE_DIR / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, name


# --- What every operation documents, produced ----------------------------------------------------


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield re.sub(r"\{[^}]+\}", "1", path), method, operation


def test_every_operation_with_a_body_answers_413_over_the_limit(owner_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"padding": "x" * 1000})
    checked = 0
    for url, method, operation in _operations():
        if "requestBody" not in operation:
            assert "413" not in operation["responses"], (method, url)
            continue
        assert "413" in operation["responses"], (method, url)
        response = getattr(owner_api, method)(url, body, content_type="application/json")
        assert error_of(response, 413)["code"] == "too_large", (method, url)
        checked += 1
    assert checked > 10


def test_every_operation_answers_429_when_the_caller_is_over_its_rate(owner_api, monkeypatch):
    monkeypatch.setattr(CallerRateThrottle, "rate", "1/min")
    assert owner_api.get("/api/v1/workspaces/").status_code == 200  # the one request allowed
    checked = 0
    for url, method, operation in _operations():
        assert "429" in operation["responses"], (method, url)
        response = getattr(owner_api, method)(url, {}, format="json")
        assert error_of(response, 429)["code"] == "throttled", (method, url)
        assert int(response["Retry-After"]) > 0
        checked += 1
    assert checked > 40
