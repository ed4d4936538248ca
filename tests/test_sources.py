"""Sources: validation naming the bad field, cron schedules, preview, and the run policy
(overlap, retries with backoff, time limit, max pages) — the engine run in-process."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from crawls import events, services
from crawls.demo.board import DEMO_RULES, expected_bids
from crawls.engine import lifecycle, run
from crawls.models import Crawl, CrawlEvent, Source
from tests.factories import absent_notice_path, make_source

pytestmark = pytest.mark.django_db(transaction=True)


def board_source(workspace, board, **values) -> Source:
    """A source of `workspace` that starts at the demo board's listing."""
    return make_source(
        workspace, "Board", **{"start_urls": [f"{board.base_url}/notices"], **values}
    )


@pytest.mark.parametrize(
    ("values", "field", "mentions"),
    [
        ({"rules": {"fields": {"views": {"css": "td", "type": "text"}}}}, "rules", "views"),
        ({"rules": {"follow": ["a["]}}, "rules", "follow[0]"),
        ({"rules": "not rules"}, "rules", "rules"),
        ({"start_urls": []}, "start_urls", "at least one"),
        ({"start_urls": ["http://169.254.169.254/latest/"]}, "start_urls", "metadata"),
        ({"start_urls": ["file:///etc/passwd"]}, "start_urls", "scheme"),
        ({"include_patterns": ["("]}, "include_patterns", "missing )"),
        ({"schedule_cron": "every day"}, "schedule_cron", "five fields"),
        ({"schedule_cron": "61 * * * *"}, "schedule_cron", "61"),
        ({"schedule_timezone": "Mars/Olympus"}, "schedule_timezone", "Mars/Olympus"),
        ({"concurrency_per_host": 0}, "concurrency_per_host", "between 1 and 64"),
        ({"delay_seconds": -1}, "delay_seconds", "negative"),
    ],
)
def test_source_validation_names_the_bad_field(workspace_a, board, values, field, mentions):
    with pytest.raises(ValidationError) as error:
        board_source(workspace_a, board, **values)
    messages = error.value.message_dict
    assert field in messages
    assert mentions in " ".join(messages[field])
    assert not Source.objects.exists()


def test_a_cron_schedule_becomes_one_beat_task_kept_in_step(workspace_a, board):
    source = board_source(
        workspace_a, board, schedule_cron="30 6 * * 1-5", schedule_timezone="Asia/Seoul"
    )
    task = PeriodicTask.objects.get(pk=source.periodic_task_id)
    assert (task.task, json.loads(task.args), task.enabled) == (
        "crawls.scheduled",
        [source.pk],
        True,
    )
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "6", "1-5")
    assert str(crontab.timezone) == "Asia/Seoul"

    services.source_update(source=source, schedule_cron="0 * * * *")
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour) == ("0", "*")
    assert PeriodicTask.objects.filter(task="crawls.scheduled").count() == 1

    services.source_update(source=source, schedule_cron="")
    assert not PeriodicTask.objects.filter(task="crawls.scheduled").exists()


def test_scheduled_runs_follow_the_overlap_policy(workspace_a, board):
    source = board_source(workspace_a, board, overlap_policy=Source.OverlapPolicy.SKIP)
    first = services.crawl_start(source=source, workers=0)
    assert services.crawl_scheduled(source_id=source.pk) is None  # skipped: one is active
    services.source_update(source=source, overlap_policy=Source.OverlapPolicy.QUEUE)
    second = services.crawl_scheduled(source_id=source.pk)
    assert second is not None
    assert second.status == Crawl.Status.QUEUED
    # While the first runs, the queued one waits its turn instead of crawling alongside.
    Crawl.objects.filter(pk=first.pk).update(status=Crawl.Status.RUNNING)
    assert run.crawl_run(second.pk, owner="test") == lifecycle.RunResult("queued", retry_in=15)


def test_preview_shows_what_the_rules_extract_from_one_page(workspace_a, board):
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    preview = services.source_preview(rules_data=DEMO_RULES, url=url)
    assert preview["status"] == 200
    assert preview["errors"] == {}
    assert preview["fields"]["title"] == expected["title"]
    assert preview["fields"]["views"] == expected["views"]
    assert preview["fields"]["attachment"] == expected["extra"]["attachment"]
    listing = services.source_preview(rules_data=DEMO_RULES, url=f"{board.base_url}/notices")
    assert len(listing["items"]) >= 15
    assert any("/notices/page/2" in link for link in listing["follow"])


def test_preview_refuses_internal_urls_and_bad_rules(board):
    refused = services.source_preview(rules_data=DEMO_RULES, url="http://10.1.2.3/admin")
    assert refused["error"]["class"] == "refused"
    with pytest.raises(ValidationError) as error:
        services.source_preview(rules_data={"items": [1]}, url=f"{board.base_url}/notices")
    assert "items[0]" in error.value.message_dict["rules"][0]


def test_a_failed_crawl_is_retried_with_backoff_then_fails(workspace_a, board, settings):
    settings.CRAWL_RETRIES = 0
    source = board_source(
        workspace_a,
        board,
        start_urls=[f"{board.base_url}{absent_notice_path(board.config)}"],  # 404: nothing fetched
        retry_max=1,
        retry_backoff_seconds=30,
    )
    crawl = services.crawl_start(source=source, workers=0)
    assert run.crawl_run(crawl.pk, owner="test") == lifecycle.RunResult("queued", retry_in=30)
    crawl.refresh_from_db()
    assert (crawl.status, crawl.attempt) == (Crawl.Status.QUEUED, 2)
    assert run.crawl_run(crawl.pk, owner="test") == lifecycle.RunResult("failed")
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.FAILED
    assert crawl.error == "no page could be fetched"
    types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
    assert types.count(events.STARTED) == 2
    assert events.RETRYING in types
    assert types[-1] == events.FAILED


def test_max_pages_bounds_the_frontier(workspace_a, board):
    source = board_source(workspace_a, board, max_pages=10)
    crawl = services.crawl_start(source=source, workers=0)
    assert run.crawl_run(crawl.pk, owner="test").status == Crawl.Status.SUCCEEDED
    crawl.refresh_from_db()
    assert crawl.pages_total == 10
    assert crawl.frontier.count() == 10


def test_the_time_limit_fails_a_crawl(workspace_a, board):
    source = board_source(workspace_a, board, time_limit_seconds=0, retry_max=0)
    crawl = services.crawl_start(source=source, workers=0)
    assert run.crawl_run(crawl.pk, owner="test").status == Crawl.Status.FAILED
    crawl.refresh_from_db()
    assert crawl.error == "time limit (0s)"


def test_refused_start_urls_become_events_and_nothing_is_fetched(workspace_a, board, settings):
    source = board_source(workspace_a, board)
    # The source was valid when saved; the allowlist changed since.
    settings.CRAWL_ALLOWLIST = []
    crawl = services.crawl_start(source=source, workers=0)
    refused = CrawlEvent.objects.get(crawl=crawl, type=events.URL_REFUSED)
    assert "loopback" in refused.payload["error"]
    assert crawl.frontier.count() == 0
