"""/api/v1/analytics/… and the /analytics/ page: answers, scoping, parameters, query budgets."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.core.cache import cache as django_cache
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import services
from crawls.models import Bid, Crawl, Source
from tests.clients import bearer
from tests.factories import join

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "high-value": "/api/v1/analytics/high-value/?min_views=10",
    "bids-per-day": "/api/v1/analytics/bids-per-day/",
    "top-departments": "/api/v1/analytics/top-departments/",
    "crawl-health": "/api/v1/analytics/crawl-health/",
    "procurement": "/api/v1/analytics/procurement/",
}


@pytest.fixture(autouse=True)
def _no_stale_answers():
    client = django_cache._cache.get_client(write=True)
    for key in client.scan_iter(match="*analytics:*"):
        client.delete(key)


def _bid(source, n, department, *, views, amount, days_ago=0, **columns):
    url = f"https://example.org/{source.pk}/{n}"
    now = timezone.now()
    Bid.objects.create(
        workspace_id=source.workspace_id, source=source, url=url,
        url_hash=hashlib.md5(url.encode()).digest(),  # noqa: S324 - an id, not security
        title=f"Notice {n}", department=department, views=views, amount=Decimal(amount),
        post_date=timezone.localdate() - dt.timedelta(days=days_ago), content_hash="x",
        first_seen_at=now, last_seen_at=now, changed_at=now, **columns,
    )  # fmt: skip


def _source(workspace, name):
    return Source.objects.create(
        workspace=workspace, name=name, start_urls=["https://example.org/"], rules={}
    )


@pytest.fixture
def data(workspace_a, workspace_b):
    """A: Roads (2 bids) and Water; B: its own Harbour bid."""
    a, b = _source(workspace_a, "Seoul board"), _source(workspace_b, "Busan board")
    _bid(a, 1, "Roads", views=50, amount="100")
    _bid(a, 2, "Roads", views=5, amount="200", days_ago=1)
    _bid(a, 3, "Water", views=500, amount="50")
    _bid(b, 4, "Harbour", views=9000, amount="7000")
    Crawl.objects.create(workspace=workspace_a, source=a, status="succeeded")
    Crawl.objects.create(workspace=workspace_b, source=b, status="failed")
    services.summary_rebuild(workspace_ids=[workspace_a.pk, workspace_b.pk])
    return a, b


@pytest.fixture
def owner_api(owner):
    """Olivia's client, signed in with a session."""
    client = APIClient()
    client.force_login(owner)
    return client


def test_high_value_answers_per_department(owner_api, data, workspace_a):
    response = owner_api.get("/api/v1/analytics/high-value/?min_views=10&min_amount=150")
    assert response.status_code == 200
    body = response.json()
    assert body["workspace"] == workspace_a.pk
    assert body["until"] == timezone.localdate().isoformat()
    assert body["departments"] == [
        {"department": "Roads", "bids": 2, "total_amount": "300.00", "max_views": 50},
        {"department": "Water", "bids": 1, "total_amount": "50.00", "max_views": 500},
    ]


def test_bids_per_day_top_departments_and_crawl_health_answer(owner_api, data):
    source, _ = data
    per_day = owner_api.get("/api/v1/analytics/bids-per-day/?days=2&by=source").json()
    assert per_day["totals"] == [1, 2]
    assert per_day["series"] == [
        {"key": str(source.pk), "label": "Seoul board", "total": 3, "counts": [1, 2]}
    ]
    top = owner_api.get("/api/v1/analytics/top-departments/?limit=1").json()
    assert top["departments"] == [{"department": "Roads", "bids": 2, "total_amount": "300.00"}]
    health = owner_api.get("/api/v1/analytics/crawl-health/").json()["sources"]
    assert [(h["source_name"], h["crawls"], h["success_rate"]) for h in health] == [
        ("Seoul board", 1, 1.0)
    ]


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_every_endpoint_answers_only_about_the_callers_workspace(name, data, outsider, owner):
    """Oscar (workspace B) sees B only, and cannot name A, with a session or a token."""
    oscar = APIClient()
    oscar.force_login(outsider)
    body = oscar.get(ENDPOINTS[name]).json()
    text = str(body)
    assert "Roads" not in text
    assert "Seoul board" not in text
    assert body["workspace"] != data[0].workspace_id
    named = oscar.get(f"{ENDPOINTS[name]}{'&' if '?' in ENDPOINTS[name] else '?'}"
                      f"workspace={data[0].workspace_id}")  # fmt: skip
    assert named.status_code == 400
    assert list(named.json()["error"]["details"]) == ["workspace"]
    olivia = bearer(owner, data[0].workspace)
    mine = olivia.get(ENDPOINTS[name])
    assert mine.status_code == 200
    assert "Harbour" not in str(mine.json())
    assert "Busan board" not in str(mine.json())
    other = olivia.get(f"{ENDPOINTS['crawl-health']}?workspace={data[1].workspace_id}")
    assert list(other.json()["error"]["details"]) == ["workspace"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/analytics/high-value/", "min_views"),  # neither threshold
        ("/api/v1/analytics/high-value/?min_views=-1", "min_views"),
        ("/api/v1/analytics/high-value/?min_amount=lots", "min_amount"),
        ("/api/v1/analytics/high-value/?min_views=1&days=0", "days"),
        ("/api/v1/analytics/bids-per-day/?by=weekday", "by"),
        ("/api/v1/analytics/bids-per-day/?days=10000", "days"),
        ("/api/v1/analytics/top-departments/?limit=abc", "limit"),
        ("/api/v1/analytics/crawl-health/?days=x", "days"),
        ("/api/v1/analytics/crawl-health/?workspace=0", "workspace"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(owner_api, data, path, field):
    response = owner_api.get(path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["details"]) == [field]
    assert field in error["message"]


def test_a_member_of_several_workspaces_must_name_one(owner_api, data, owner, workspace_b):
    join(workspace=workspace_b, user=owner, role="viewer")
    response = owner_api.get(ENDPOINTS["top-departments"])
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["workspace"]
    named = owner_api.get(f"{ENDPOINTS['top-departments']}?workspace={workspace_b.pk}").json()
    assert named["departments"][0]["department"] == "Harbour"


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_anonymous_callers_get_401(name):
    response = APIClient().get(ENDPOINTS[name])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_query_budget_of_each_endpoint(name, data, owner, settings, django_assert_num_queries):
    settings.ANALYTICS_CACHE_SECONDS = 0
    client = bearer(owner, data[0].workspace)
    # the token (with its membership), its last_used_at, the answer's one query
    with django_assert_num_queries(3):
        assert client.get(ENDPOINTS[name]).status_code == 200


def test_a_cached_answer_costs_no_query_and_a_crawl_batch_refreshes_it(
    data, owner, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from crawls import events
    from crawls.engine.store import Item, bids_store

    source, _ = data
    client = bearer(owner, source.workspace)
    path = "/api/v1/analytics/top-departments/"
    first = client.get(path).json()["departments"]
    with django_assert_num_queries(1):  # the token (last_used_at is fresh): no answer query
        assert client.get(path).json()["departments"] == first
    crawl = Crawl.objects.create(workspace=source.workspace, source=source, status="running")
    url = "https://example.org/new"
    with django_capture_on_commit_callbacks(execute=True):
        stored = bids_store(
            crawl_id=crawl.pk, source_id=source.pk, workspace_id=source.workspace_id,
            items=[Item(url=url, url_hash=hashlib.md5(url.encode()).digest(),  # noqa: S324
                        fields={"title": "New", "department": "Parks", "amount": Decimal(999),
                                "post_date": timezone.localdate()},
                        content_hash="n")],
            now=timezone.now(),
        )  # fmt: skip
        events.event_append(
            crawl_id=crawl.pk, workspace_id=source.workspace_id, type=events.ITEMS,
            payload={"new": stored.new, "changed": stored.changed},
        )  # fmt: skip
    fresh = client.get(path).json()["departments"]
    assert fresh[0] == {"department": "Parks", "bids": 1, "total_amount": "999.00"}


def test_procurement_counts_by_status_and_sums_each_currency_apart(owner_api, data, workspace_a):
    a, _ = data
    _bid(a, 5, "Roads", views=1, amount="1000", currency="USD", status="cancelled")
    _bid(a, 6, "Water", views=1, amount="20", currency="USD", status="awarded")
    _bid(a, 7, "Water", views=1, amount="4477000000", currency="KRW", status="active")
    services.summary_rebuild(workspace_ids=[workspace_a.pk])
    body = owner_api.get("/api/v1/analytics/procurement/", {"days": 7}).json()
    assert body["by_status"] == [
        {"status": "active", "bids": 1},
        {"status": "cancelled", "bids": 1},
        {"status": "awarded", "bids": 1},
        {"status": "closed", "bids": 0},
        {"status": "unknown", "bids": 3},
    ]
    assert body["by_currency"] == [
        {"currency": "", "bids": 3, "total_amount": "350.00"},
        {"currency": "USD", "bids": 2, "total_amount": "1020.00"},
        {"currency": "KRW", "bids": 1, "total_amount": "4477000000.00"},
    ]
    top = owner_api.get("/api/v1/analytics/top-departments/", {"days": 7}).json()
    assert top["currency"] == "KRW"
    # USD amounts are not added to won (or to amounts naming no currency).
    assert {r["department"]: r["total_amount"] for r in top["departments"]} == {
        "Water": "4477000050.00",
        "Roads": "300.00",
    }
    high = owner_api.get("/api/v1/analytics/high-value/", {"min_amount": "500", "days": 7})
    assert high.json()["currency"] == "KRW"
    assert [(r["department"], r["bids"]) for r in high.json()["departments"]] == [("Water", 1)]
    assert owner_api.get("/api/v1/analytics/procurement/", {"days": 0}).status_code == 400


# --- The page -----------------------------------------------------------------------------------


def test_the_dashboard_page_draws_charts_with_tables(client, owner, data):
    client.force_login(owner)
    response = client.get("/analytics/?days=7&min_views=10&min_amount=0")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 3
    assert '<title id="chart-high-title">High-value bids per department</title>' in html
    assert '<desc id="chart-day-desc">' in html
    assert '<th scope="row">Roads</th><td>2</td>' in html
    assert '<tr data-status="unknown"><th scope="row">Unknown</th><td>3</td></tr>' in html
    assert '<tr data-currency=""><th scope="row">(none named)</th><td>3</td>' in html
    assert "Harbour" not in html
    assert 'href="/analytics/"' in html  # the nav link


def test_the_dashboard_page_names_a_bad_parameter(client, owner, data):
    client.force_login(owner)
    response = client.get("/analytics/?days=0")
    assert response.status_code == 400
    assert "days:" in response.content.decode()


def test_the_dashboard_page_needs_a_login(client):
    response = client.get("/analytics/")
    assert response.status_code == 302
