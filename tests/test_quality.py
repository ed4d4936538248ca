"""Extraction quality (docs/quality.md): the report's checks, per-source thresholds, and real
crawls of the demo board through a worker: its redesign ends a crawl degraded and tells the
workspace's managers; a normal re-crawl succeeds."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crawls import services as crawl_services
from crawls.demo.board import DEMO_RULES
from crawls.engine import quality
from crawls.models import Crawl, Source
from notifications.models import EmailDelivery, Notification
from tests.crawling import wait_for_crawl
from tests.processes import http_get, wait_until

DEFAULTS = {
    "coverage_drop_points": 20.0,
    "items_ratio_min": 0.5,
    "required_failure_pct": 5.0,
    "empty_item_page_pct": 10.0,
    "min_history": 1,
    "min_items": 20,
}
LOST = (
    "amount",
    "attachment",
    "currency",
    "deadline",
    "department",
    "post_date",
    "reference",
    "views",
)


def counts(items=10, pages=10, empty=0, required=0, **present):
    found: Counter[str] = Counter(items_read=items, item_pages=pages)
    found.update(empty_item_pages=empty, required_failures=required)
    for name, n in present.items():
        found[quality.FIELD + name] = n
    return found


def past(items=10, **coverage):
    return {"items": items, "coverage": coverage}


# --- The report ----------------------------------------------------------------------------------


def test_report_without_history_runs_only_the_history_free_checks():
    report = quality.report_build(counts(title=10, department=0), [], DEFAULTS)
    assert report["coverage"] == {"department": 0.0, "title": 1.0}
    assert report["history"] == {"crawls": 0, "items_median": None, "coverage_median": {}}
    assert report["breaches"] == []


def test_report_coverage_drop_names_the_field_and_the_median():
    history = [past(department=1.0, title=1.0), past(department=0.9, title=1.0)]
    report = quality.report_build(counts(title=10, department=6), history, DEFAULTS)
    assert [b["field"] for b in report["breaches"]] == ["department"]
    assert report["breaches"][0]["message"] == "department coverage 60% (recent median 95%)"
    fine = quality.report_build(counts(title=10, department=8), history, DEFAULTS)
    assert fine["breaches"] == []  # 80% is not more than 20 points below 95%


def test_report_items_below_half_the_median_breach():
    history = [past(items=40), past(items=50), past(items=60)]
    report = quality.report_build(counts(items=24, pages=24), history, DEFAULTS)
    assert [b["check"] for b in report["breaches"]] == ["items_ratio"]
    assert report["breaches"][0]["message"] == "24 items (recent median 50, at least 25 expected)"
    assert quality.report_build(counts(items=25, pages=25), history, DEFAULTS)["breaches"] == []


def test_report_required_failures_and_empty_pages_over_their_share():
    report = quality.report_build(counts(items=90, pages=100, empty=10, required=6), [], DEFAULTS)
    assert [b["check"] for b in report["breaches"]] == ["required_failure"]
    worse = quality.report_build(counts(items=80, pages=100, empty=20, required=5), [], DEFAULTS)
    assert [b["check"] for b in worse["breaches"]] == ["empty_item_page"]
    assert worse["breaches"][0]["message"] == (
        "20% of item pages gave no item (20 of 100; at most 10% allowed)"
    )
    few = quality.report_build(counts(items=2, pages=3, empty=1, required=1), [], DEFAULTS)
    assert few["breaches"] == []  # fewer than min_items pages: too few to judge a share


def test_report_null_threshold_and_min_history_turn_checks_off():
    history = [past(items=50, department=1.0)]
    off = {**DEFAULTS, "coverage_drop_points": None, "items_ratio_min": None}
    assert quality.report_build(counts(items=5, department=0), history, off)["breaches"] == []
    later = {**DEFAULTS, "min_history": 2}
    assert quality.report_build(counts(items=5, department=0), history, later)["breaches"] == []


def test_thresholds_errors_name_the_key():
    assert quality.thresholds_errors({"coverage_drop_points": 30, "min_history": None}) == {}
    errors = quality.thresholds_errors(
        {"colour": 1, "items_ratio_min": 2, "min_history": 1.5, "required_failure_pct": True}
    )
    assert sorted(errors) == [
        "quality_thresholds.colour",
        "quality_thresholds.items_ratio_min",
        "quality_thresholds.min_history",
        "quality_thresholds.required_failure_pct",
    ]
    assert "between 0 and 1" in errors["quality_thresholds.items_ratio_min"]


@pytest.mark.django_db
def test_source_update_refuses_bad_thresholds(source_a):
    with pytest.raises(ValidationError) as raised:
        crawl_services.source_update(source=source_a, quality_thresholds={"colour": 1})
    assert "quality_thresholds.colour" in raised.value.message_dict["quality_thresholds"][0]
    crawl_services.source_update(source=source_a, quality_thresholds={"items_ratio_min": 0.8})
    source_a.refresh_from_db()
    assert source_a.quality_thresholds == {"items_ratio_min": 0.8}


# --- End to end: the demo board redesigned ----------------------------------------------------


def redesign(board, on: bool) -> None:
    request = urllib.request.Request(  # noqa: S310 - the local board
        f"{board.base_url}/_control/redesign",
        data=json.dumps({"on": on}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local board
        assert json.load(response)["on"] is on


@pytest.mark.django_db(transaction=True)
def test_redesigned_board_ends_degraded_and_tells_managers_then_recovers(
    celery_worker, owner, admin_user, teammate, demo_source, board
):
    owner.email = "olivia@example.org"
    owner.save(update_fields=["email"])

    def crawl():
        return wait_for_crawl(crawl_services.crawl_start(source=demo_source, user=owner))

    first = crawl()
    assert first.status == "succeeded", first.error
    report = first.quality
    assert report["items"] == first.items_new > 0
    assert report["coverage"]["title"] == report["coverage"]["department"] == 1.0
    assert report["breaches"] == []
    assert report["history"]["crawls"] == 0
    second = crawl()  # mostly 304s: seen, not in the coverage
    assert second.status == "succeeded", second.error
    assert second.quality["items"] == report["items"]
    assert second.quality["history"]["crawls"] == 1

    redesign(board, on=True)
    degraded = crawl()
    assert degraded.status == "degraded"
    assert degraded.quality["history"]["crawls"] == 2
    assert degraded.quality["coverage"]["title"] == 1.0
    breached = {b["field"] for b in degraded.quality["breaches"]}
    assert breached == set(LOST)
    assert "department coverage 0% (recent median 100%)" in degraded.error
    assert degraded.items_changed > 0  # what it read is stored

    notified = Notification.objects.filter(crawl=degraded, kind="crawl_degraded")
    wait_until(lambda: notified.count() == 2, what="crawl_degraded notifications", timeout=30)
    assert sorted(n.recipient.username for n in notified) == ["ada", "olivia"]
    assert all("department coverage 0%" in n.body for n in notified)
    assert notified.first().link == f"/crawls/{degraded.pk}/"
    mails = EmailDelivery.objects.filter(notification__in=notified)
    assert sorted(mails.values_list("to", flat=True)) == ["ada@example.org", "olivia@example.org"]

    assert http_get(f"{board.base_url}/_control/epoch?set=0")[0] == 200  # ends the redesign
    recovered = crawl()
    assert recovered.status == "succeeded", recovered.error
    assert recovered.quality["history"]["crawls"] == 2  # the degraded crawl is not history
    assert recovered.quality["coverage"]["department"] == 1.0

    crawl_services.source_update(
        source=demo_source, quality_thresholds={"coverage_drop_points": None}
    )
    redesign(board, on=True)
    tolerated = crawl()
    assert tolerated.status == "succeeded", tolerated.error
    assert tolerated.quality["coverage"]["department"] == 0.0
    assert tolerated.quality["thresholds"]["coverage_drop_points"] is None
    assert not Notification.objects.filter(crawl=tolerated, kind="crawl_degraded").exists()
    assert Crawl.objects.filter(source=demo_source, status="degraded").count() == 1


# --- API and pages -------------------------------------------------------------------------------


def reported(source, status, **report):
    """A finished crawl of `source` with a quality report (as crawl_assess leaves it)."""
    full = {
        "items": 10,
        "items_read": 10,
        "not_modified": 0,
        "coverage": {"title": 1.0, "department": 1.0},
        "item_pages": 10,
        "empty_item_pages": 0,
        "required_failures": 0,
        "errors_by_field": {},
        "history": {"crawls": 0, "items_median": None, "coverage_median": {}},
        "thresholds": DEFAULTS,
        "breaches": [],
        **report,
    }
    return Crawl.objects.create(
        workspace=source.workspace,
        source=source,
        status=status,
        quality=full,
        error="; ".join(b["message"] for b in full["breaches"]),
        finished_at=timezone.now(),
    )


DEPARTMENT_LOST = {
    "coverage": {"title": 1.0, "department": 0.0},
    "history": {"crawls": 1, "items_median": 10, "coverage_median": {"department": 1.0}},
    "breaches": [
        {
            "check": "coverage_drop",
            "field": "department",
            "value": 0.0,
            "limit": 0.8,
            "message": "department coverage 0% (recent median 100%)",
        }
    ],
}


@pytest.mark.django_db
def test_api_quality_trend_and_crawl_report_scoped_to_the_workspace(
    api, owner, outsider, source_a, django_assert_num_queries
):
    good = reported(source_a, "succeeded")
    bad = reported(source_a, "degraded", **DEPARTMENT_LOST)
    Crawl.objects.create(workspace=source_a.workspace, source=source_a, status="failed")
    client = api(owner)
    # the source (in the caller's workspaces), the caller's role there, the trend
    with django_assert_num_queries(3):
        response = client.get(f"/api/v1/sources/{source_a.pk}/quality/")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["id"], r["status"], r["items"]) for r in rows] == [
        (good.pk, "succeeded", 10),
        (bad.pk, "degraded", 10),
    ]
    assert rows[1]["coverage"] == {"title": 1.0, "department": 0.0}
    assert rows[1]["mean_coverage"] == 0.5
    assert [
        r["id"] for r in client.get(f"/api/v1/sources/{source_a.pk}/quality/?limit=1").json()
    ] == [bad.pk]
    assert client.get(f"/api/v1/sources/{source_a.pk}/quality/?limit=0").status_code == 400
    detail = client.get(f"/api/v1/crawls/{bad.pk}/").json()
    assert detail["quality"]["breaches"][0]["field"] == "department"
    assert [c["id"] for c in client.get("/api/v1/crawls/?status=degraded").json()["results"]] == [
        bad.pk
    ]
    assert client.post(f"/api/v1/crawls/{bad.pk}/cancel/").status_code == 409
    assert api(outsider).get(f"/api/v1/sources/{source_a.pk}/quality/").status_code == 404


@pytest.mark.django_db
def test_api_source_thresholds_are_validated_and_stored(api, owner, source_a):
    client = api(owner)
    url = f"/api/v1/sources/{source_a.pk}/"
    bad = client.patch(url, {"quality_thresholds": {"items_ratio_min": 3}}, format="json")
    assert bad.status_code == 400
    assert "quality_thresholds.items_ratio_min" in json.dumps(bad.json())
    good = client.patch(url, {"quality_thresholds": {"items_ratio_min": 0.8}}, format="json")
    assert good.status_code == 200
    assert good.json()["quality_thresholds"] == {"items_ratio_min": 0.8}


@pytest.mark.django_db
def test_pages_show_the_report_and_the_trend(client, owner, source_a):
    good = reported(source_a, "succeeded")
    bad = reported(source_a, "degraded", **DEPARTMENT_LOST)
    client.force_login(owner)
    page = client.get(reverse("crawls:crawl", args=[bad.pk])).content.decode()
    assert "department coverage 0% (recent median 100%)" in page
    assert '<tr class="breached"><th scope="row">department</th>' in page
    assert "Degraded" in page
    quiet = client.get(reverse("crawls:crawl", args=[good.pk])).content.decode()
    assert "Every check passed." in quiet
    source_page = client.get(reverse("crawls:source_edit", args=[source_a.pk])).content.decode()
    assert "data-quality-trend" in source_page
    assert f'data-degraded="{bad.pk}"' in source_page
    assert f'data-degraded="{good.pk}"' not in source_page


@pytest.mark.django_db
def test_dashboard_source_form_edits_thresholds(client, owner, workspace_a):
    client.force_login(owner)
    data = {
        "name": "Gangnam board",
        "start_urls": "https://board.example.org/notices",
        "max_depth": 10,
        "max_pages": 100,
        "concurrency_per_host": 4,
        "delay_seconds": 0,
        "schedule_timezone": "UTC",
        "overlap_policy": "skip",
        "rules": json.dumps(DEMO_RULES),
    }
    bad = client.post(
        reverse("crawls:source_create"), {**data, "quality_thresholds": '{"min_history": 0}'}
    )
    assert bad.status_code == 400
    assert "quality_thresholds.min_history" in bad.context["form"].errors["quality_thresholds"][0]
    good = client.post(
        reverse("crawls:source_create"), {**data, "quality_thresholds": '{"min_history": 3}'}
    )
    assert good.status_code == 302
    source = Source.objects.get(name="Gangnam board")
    assert source.quality_thresholds == {"min_history": 3}
    client.post(reverse("crawls:source_edit", args=[source.pk]), data)  # blank: the defaults
    source.refresh_from_db()
    assert source.quality_thresholds == {}
