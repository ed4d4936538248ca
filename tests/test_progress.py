"""A crawl's progress figures, computed once (crawls/engine/progress.py): in the engine's progress
and final events, on the dashboard, in the admin and in the workspace snapshot."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from crawls import events, services, streams
from crawls.demo.board import DEMO_RULES
from crawls.engine import progress, run
from crawls.models import Crawl, CrawlEvent

NOW = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
COUNTERS = {
    "pages_done", "pages_failed", "pages_total", "items_new", "items_changed", "items_unchanged",
    "errors", "capped",
}  # fmt: skip
FIGURES = {"percent", "pages_processed", "pages_queued", "pages_per_s", "eta_s", "error_count"}


def row(status=Crawl.Status.RUNNING, *, started=None, finished=None, **counts) -> Crawl:
    return Crawl(status=status, started_at=started, finished_at=finished, **counts)


def test_crawl_progress_of_a_queued_crawl_knows_no_rate_yet():
    figures = progress.crawl_progress(row(Crawl.Status.QUEUED, pages_total=4), now=NOW)
    assert figures == {
        "percent": 0, "pages_processed": 0, "pages_queued": 4, "pages_per_s": None,
        "eta_s": None, "error_count": 0,
    }  # fmt: skip


def test_crawl_progress_of_a_running_crawl():
    crawl = row(
        started=NOW - dt.timedelta(seconds=10),
        pages_done=27, pages_failed=3, pages_total=120, errors={"http_4xx": 2, "robots": 1},
    )  # fmt: skip
    assert progress.crawl_progress(crawl, now=NOW) == {
        "percent": 25, "pages_processed": 30, "pages_queued": 90, "pages_per_s": 3.0,
        "eta_s": 30, "error_count": 3,
    }  # fmt: skip


def test_crawl_progress_of_finished_crawls_has_no_eta_and_a_rate_until_the_end():
    started, finished = NOW - dt.timedelta(seconds=100), NOW - dt.timedelta(seconds=80)
    done = row(
        Crawl.Status.SUCCEEDED, started=started, finished=finished,
        pages_done=38, pages_failed=2, pages_total=41,
    )  # fmt: skip
    figures = progress.crawl_progress(done, now=NOW)
    assert (figures["percent"], figures["pages_per_s"], figures["eta_s"]) == (100, 2.0, None)
    cancelled = row(
        Crawl.Status.CANCELLED, started=started, finished=finished,
        pages_done=10, pages_total=40,
    )  # fmt: skip
    figures = progress.crawl_progress(cancelled, now=NOW)
    assert (figures["percent"], figures["pages_queued"], figures["eta_s"]) == (25, 30, None)


def test_crawl_progress_never_passes_100_percent_nor_counts_negative_queues():
    crawl = row(started=NOW - dt.timedelta(seconds=1), pages_done=12, pages_total=10)
    figures = progress.crawl_progress(crawl, now=NOW)
    assert (figures["percent"], figures["pages_queued"], figures["eta_s"]) == (100, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_the_engine_sends_the_figures_in_progress_and_final_events(workspace_a, board, settings):
    settings.CRAWL_PROGRESS_INTERVAL = 0  # a progress event after every batch
    settings.CRAWL_BATCH_SIZE = 8
    source = services.source_create(
        workspace=workspace_a,
        name="Board",
        start_urls=[f"{board.base_url}/notices"],
        rules=DEMO_RULES,
    )
    crawl = services.crawl_start(source=source, workers=0)
    assert run.crawl_run(crawl.pk, owner="test").status == Crawl.Status.SUCCEEDED
    log = CrawlEvent.objects.filter(crawl=crawl).order_by("sequence")
    sent = [e.payload for e in log if e.type == events.PROGRESS]
    assert len(sent) > 2
    for payload in sent:
        assert set(payload) == COUNTERS | FIGURES | {"current_url"}
        processed = payload["pages_done"] + payload["pages_failed"]
        assert payload["pages_processed"] == processed
        assert payload["pages_queued"] == payload["pages_total"] - processed
        assert payload["percent"] == round(100 * processed / payload["pages_total"])
        assert payload["pages_per_s"] > 0
        assert payload["eta_s"] is not None
        assert payload["error_count"] == sum(payload["errors"].values())
        assert payload["current_url"].startswith(board.base_url)
    assert sent[-1]["percent"] > sent[0]["percent"]
    final = log.last()
    assert final.type == events.SUCCEEDED
    crawl.refresh_from_db()
    # and the rest of the final row, for crawl_rebuild (crawls/services/rebuild.py)
    assert set(final.payload) == COUNTERS | FIGURES | {"error", "finished_at", "quality"}
    assert final.payload["percent"] == 100
    assert final.payload["eta_s"] is None
    assert final.payload["pages_processed"] == crawl.pages_done + crawl.pages_failed


@pytest.fixture
def running(workspace_a):
    source = services.source_create(
        workspace=workspace_a,
        name="Seoul board",
        start_urls=["https://bids.example.org/notices"],
        rules=DEMO_RULES,
    )
    crawl = services.crawl_start(source=source, workers=0)
    Crawl.objects.filter(pk=crawl.pk).update(
        status=Crawl.Status.RUNNING,
        started_at=timezone.now() - dt.timedelta(seconds=10),
        pages_done=27,
        pages_failed=3,
        pages_total=120,
        errors={"http_4xx": 3},
    )
    return crawl


def shown(html: str, field: str) -> str:
    found = re.search(rf'data-field="{field}"[^>]*>([^<]*)<', unescape(html))
    assert found, field
    return found.group(1)


@pytest.mark.django_db
def test_the_pages_render_the_figures_of_the_crawl_row(client, owner, running):
    client.force_login(owner)
    page = client.get(reverse("crawls:crawl", args=[running.pk])).content.decode()
    assert shown(page, "percent") == "25%"
    assert 'value="25"' in page
    pages_per_s = float(shown(page, "pages_per_s"))
    assert 2.0 < pages_per_s <= 3.0  # 30 pages in 10 s and a little more
    assert 30 <= int(shown(page, "eta_s").removesuffix(" s")) < 46
    overview = client.get(reverse("crawls:overview")).content.decode()
    assert shown(overview, "percent") == "25%"
    assert shown(overview, "error_count") == "3"

    superuser = get_user_model().objects.create_superuser("sam", "sam@example.org", "pw-sam-1")
    client.force_login(superuser)
    admin = client.get(reverse("admin:crawls_crawl_change", args=[running.pk]))
    assert admin.status_code == 200
    assert shown(admin.content.decode(), "percent") == "25%"


@pytest.mark.django_db
def test_the_workspace_snapshot_carries_the_figures(workspace_a, running):
    (snapshot,) = streams.workspace_snapshot([workspace_a.pk])["crawls"]
    assert (snapshot["percent"], snapshot["pages_queued"], snapshot["error_count"]) == (25, 90, 3)
    assert snapshot["eta_s"] > 0
