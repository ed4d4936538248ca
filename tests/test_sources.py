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
from tests import fake_api
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


# --- Kinds and secrets --------------------------------------------------------------------------

# HTML rules that use a secret (in an attribute selector: any string of the rules counts).
RULES_WITH_SECRET = {**DEMO_RULES, "items": ['a[data-key="{secret.board_key}"]']}


@pytest.mark.parametrize(
    ("secrets", "mentions"),
    [
        ({"Bad-Name": "value1"}, "'Bad-Name': a name is lower case"),
        ({"9lives": "value1"}, "'9lives': a name is lower case"),
        ({"empty": ""}, "empty: a non-empty string"),
        ({"number": 12345}, "number: a non-empty string"),
        ({"big": "x" * 4097}, "big: at most 4096 bytes"),
        ({f"key_{n}": "value1" for n in range(21)}, "at most 20 secrets"),
        (["not", "an", "object"], "an object of names to values"),
    ],
)
def test_source_secrets_are_validated_without_quoting_values(workspace_a, secrets, mentions):
    with pytest.raises(ValidationError) as refused:
        make_source(workspace_a, secrets=secrets)
    messages = refused.value.message_dict["secrets"]
    assert any(mentions in message for message in messages), messages
    assert not any("value1" in message or "xxxx" in message for message in messages)


def test_source_rules_need_every_secret_they_use(workspace_a):
    with pytest.raises(ValidationError) as refused:
        make_source(workspace_a, rules=RULES_WITH_SECRET)
    (message,) = refused.value.message_dict["secrets"]
    assert "{secret.board_key}" in message
    source = make_source(workspace_a, rules=RULES_WITH_SECRET, secrets={"board_key": "s3cr3t-1"})
    assert source.secrets == {"board_key": "s3cr3t-1"}
    with pytest.raises(ValidationError) as refused:  # removing a secret the rules use
        services.source_update(source=source, secrets={})
    assert "board_key" in refused.value.message_dict["secrets"][0]


def test_source_secrets_are_replaced_as_a_set_and_null_keeps_a_value(workspace_a):
    source = make_source(workspace_a, secrets={"one": "value-one", "two": "value-two"})
    services.source_update(source=source, secrets={"one": None, "three": "value-three"})
    source.refresh_from_db()
    assert source.secrets == {"one": "value-one", "three": "value-three"}
    with pytest.raises(ValidationError) as refused:
        services.source_update(source=source, secrets={"four": None})
    assert refused.value.message_dict["secrets"] == ["four: no stored value to keep"]


def test_source_kind_is_one_of_the_kinds(workspace_a):
    with pytest.raises(ValidationError) as refused:
        make_source(workspace_a, kind="csv")
    assert refused.value.message_dict["kind"] == ["must be one of html, json, xml, ocds"]
    assert make_source(workspace_a).kind == Source.Kind.HTML


# The tests below need the json and ocds parsers (crawls.engine.api_rules, api_read, ocds) and
# the fetcher's request method (Fetcher.fetch): written by other helpers of issue 12.


def test_changing_a_sources_kind_validates_its_rules_again(workspace_a):
    source = make_source(workspace_a)
    with pytest.raises(ValidationError) as refused:  # HTML rules are not JSON API rules
        services.source_update(source=source, kind=Source.Kind.JSON)
    assert refused.value.message_dict["rules"]
    assert all(":" in message for message in refused.value.message_dict["rules"])  # by path
    source.refresh_from_db()
    assert source.kind == Source.Kind.HTML
    services.source_update(
        source=source,
        kind=Source.Kind.JSON,
        rules=fake_api.JSON_RULES,
        secrets={"service_key": fake_api.SERVICE_KEY},
    )
    services.source_update(source=source, kind=Source.Kind.OCDS, rules={}, secrets={})
    source.refresh_from_db()
    assert (source.kind, source.rules, source.secrets) == ("ocds", {}, {})


@pytest.fixture
def open_api(settings):
    """The fake open-data API, let through the SSRF guard."""
    api = fake_api.start()
    settings.CRAWL_ALLOWLIST = [*settings.CRAWL_ALLOWLIST, api.address]
    yield api
    api.stop()


def test_preview_of_a_json_api_shows_records_and_next_requests_never_the_key(open_api, caplog):
    caplog.set_level("DEBUG")
    preview = services.source_preview(
        kind="json",
        rules_data=fake_api.JSON_RULES,
        url=f"{open_api.base_url}/bids",
        secrets={"service_key": fake_api.SERVICE_KEY},
    )
    assert "error" not in preview, preview
    assert preview["records_total"] == fake_api.PAGE_SIZE
    first = preview["records"][0]
    assert (first["key"], first["fields"]["title"]) == ("20260001", "Road repair 1")
    assert first["url"] == "https://portal.example.org/bids/1"
    assert len(preview["requests"]) == 1  # page 2 of 2 (5 items, 3 a page)
    assert "pageNo=2" in preview["requests"][0]
    shown = json.dumps(preview) + caplog.text
    assert fake_api.SERVICE_KEY not in shown
    assert "k3y%2BSecret" not in shown


def test_preview_of_a_json_api_shows_the_publishers_error(open_api):
    preview = services.source_preview(
        kind="json",
        rules_data=fake_api.JSON_RULES,
        url=f"{open_api.base_url}/bids",
        secrets={"service_key": "wrong-key-123"},
    )
    assert preview["error"] == {
        "class": "publisher",
        "message": "SERVICE KEY IS NOT REGISTERED ERROR.",
    }
    assert preview["records"] == []
    assert "wrong-key-123" not in json.dumps(preview)


def test_preview_needs_the_secrets_its_rules_use(open_api):
    with pytest.raises(ValidationError) as refused:
        services.source_preview(
            kind="json", rules_data=fake_api.JSON_RULES, url=f"{open_api.base_url}/bids"
        )
    assert refused.value.message_dict["secrets"] == [
        "the rules use {secret.service_key}: give its value"
    ]


def test_a_secret_never_reaches_the_logs_of_a_preview_or_a_crawl_start(
    workspace_a, board, caplog, sent_tasks
):
    caplog.set_level("DEBUG")
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    title = expected["title"]  # a "secret" the page shows: what leaves the preview hides it
    preview = services.source_preview(
        rules_data=DEMO_RULES, url=url, secrets={"title": title, "service_key": "key-value-99"}
    )
    assert preview["fields"]["title"] == "{secret.title}"
    assert title not in json.dumps(preview, ensure_ascii=False)
    source = make_source(
        workspace_a,
        rules=RULES_WITH_SECRET,
        start_urls=[f"{board.base_url}/notices"],
        secrets={"board_key": "key-value-99"},
    )
    crawl = services.crawl_start(source=source, trigger="api", workers=0)
    assert crawl.status == Crawl.Status.QUEUED
    payloads = json.dumps(list(CrawlEvent.objects.values_list("payload", flat=True)))
    assert "key-value-99" not in payloads
    assert "key-value-99" not in caplog.text
    assert title not in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.1:6379/", "http://10.0.0.1/"]
)
def test_an_api_request_aimed_at_an_internal_address_is_refused_at_save(workspace_a, url):
    api_rules = {
        "request": {"url": url, "method": "POST", "form": {"page": "{page}"}},
        "items": "data",
        "key": "id",
        "fields": {"title": "title"},
        "pagination": {"style": "page", "start": 1},
    }
    with pytest.raises(ValidationError) as caught:
        services.source_create(
            workspace=workspace_a,
            name="internal",
            kind="json",
            start_urls=["https://apis.example.org/bids"],
            rules=api_rules,
        )
    problems = caught.value.message_dict["rules"]
    assert any(message.startswith("request.url: ") for message in problems)
