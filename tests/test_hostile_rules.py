"""Users' rules cannot stall a process: previews run them in a child process killed past
PREVIEW_TIMEOUT_SECONDS while daphne keeps answering; a crawl records a page that outruns its
budget as extract_timeout and moves on (docs/crawling.md, "Hostile rules")."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.core.exceptions import ValidationError

from crawls import events, services
from crawls.engine import rules, sandbox
from crawls.models import Crawl, CrawlEvent, FrontierUrl
from tests.crawling import wait_for_crawl
from tests.processes import http_get, http_status, program_env, start_daphne

# A selector lexbor backtracks on: on a page nested 1,000 deep it runs for minutes in one call.
STALLING_CSS = "p div div div span.amount"
HOSTILE_RULES = {
    "items": ["ul.notices a"],
    "fields": {
        "title": "h1.notice-title",
        "amount": {"css": STALLING_CSS, "type": "decimal", "required": False},
        # Catastrophic for a backtracking engine on the page's 30,000 "a"s; linear on RE2.
        "reference": {"css": "td.amount", "regex": "(a+)+$", "required": False},
    },
}
DEEP_PAGE = (
    '<h1 class="notice-title">Deep</h1>' + "<div>" * 1000 + '<span class="amount">1</span>'
    "" + "</div>" * 1000
)


def test_a_sandbox_kills_a_stalled_step_names_it_and_reads_the_next_page():
    parsed = rules.rules_parse(HOSTILE_RULES)
    child = sandbox.Sandbox()
    try:
        page = child.extract(
            DEEP_PAGE, url="http://board.test/deep", rules=parsed, budget=0.2, kill_after=0.3
        )
        assert page.timeout == "amount"
        assert not child.alive  # killed: lexbor was still matching
        page = child.extract(
            f'<h1 class="notice-title">Plain</h1><table><tr><td class="amount">{"a" * 30_000}!',
            url="http://board.test/plain",
            rules=parsed,
            budget=5,
            kill_after=5,
        )
        assert page.timeout is None
        assert page.fields == {"title": "Plain", "amount": None, "reference": None}
        assert page.errors["reference"].startswith("regex '(a+)+$' does not match 'aaaa")
    finally:
        child.close()


def test_a_pool_lends_at_most_its_size():
    pool = sandbox.Pool(1)
    with pool.sandbox(), pytest.raises(sandbox.Busy), pool.sandbox():
        pass
    with pool.sandbox() as again:
        assert isinstance(again, sandbox.Sandbox)
    pool.close()


# --- Preview through a real daphne -----------------------------------------------------------


@pytest.fixture(scope="module")
def strict_daphne(django_db_setup, tmp_path_factory):
    """daphne with a 2 s preview limit and one preview at a time."""
    server = start_daphne(
        program_env(PREVIEW_TIMEOUT_SECONDS="2", PREVIEW_MAX_CONCURRENT="1"),
        tmp_path_factory.mktemp("daphne") / "daphne.log",
    )
    yield server
    server.stop()


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - our own server
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.django_db(transaction=True)
def test_a_stalling_preview_answers_400_naming_the_field_while_daphne_answers_beside_it(
    strict_daphne, board, owner, workspace_a
):
    _, token = services.token_create(user=owner, workspace=workspace_a, name="hostile")
    auth = {"Authorization": f"Bearer {token}"}
    preview_url = f"{strict_daphne.base_url}/api/v1/sources/preview/"
    body = {"rules": HOSTILE_RULES, "url": f"{board.base_url}/hostile/rules/deep"}
    answer: dict = {}
    worker = threading.Thread(
        target=lambda: answer.update(result=post_json(preview_url, body, token))
    )
    worker.start()
    health, api, busy = [], [], []
    while worker.is_alive():
        health.append(http_status(f"{strict_daphne.base_url}/healthz"))
        api.append(http_get(f"{strict_daphne.base_url}/api/v1/sources/", headers=auth)[0])
        if not busy:
            busy.append(post_json(preview_url, body, token))
        time.sleep(0.05)
    worker.join()

    status, result = answer["result"]
    assert status == 400, result
    assert result["error"]["details"]["rules"] == ["fields.amount: preview took longer than 2 s"]
    assert health.count(200) >= 1, health
    assert api.count(200) >= 1, api
    # One preview at a time here: a second one meanwhile is told to come back.
    busy_status, busy_body = busy[0]
    assert (busy_status, busy_body["error"]["code"]) == (503, "busy")
    # The catastrophic regex answers at once on RE2, and the server is free again.
    body["url"] = f"{board.base_url}/hostile/rules/backtrack"
    status, result = post_json(preview_url, body, token)
    assert status == 200, result
    assert result["fields"]["title"] == "Hostile page: backtrack"
    assert "does not match" in result["errors"]["reference"]


@pytest.mark.django_db(transaction=True)
def test_a_preview_with_a_lookbehind_is_refused_naming_the_path(workspace_a, owner, board):
    data = {"fields": {"title": {"css": "h1", "regex": "(?<=Notice: ).+"}}}

    with pytest.raises(ValidationError) as refused:
        services.source_preview(rules_data=data, url=f"{board.base_url}/hostile/rules/plain")

    assert refused.value.message_dict["rules"] == [
        "fields.title.regex: title.regex '(?<=Notice: ).+': lookbehind (?<=...) is not "
        "supported; use a group instead"
    ]


# --- A crawl through a real Celery worker ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_crawl_records_a_stalling_page_as_extract_timeout_and_moves_on(
    celery_worker, workspace_a, board
):
    source = services.source_create(
        workspace=workspace_a,
        name="Hostile rules",
        start_urls=[f"{board.base_url}/hostile/rules/"],
        rules=HOSTILE_RULES,
    )

    crawl = wait_for_crawl(services.crawl_start(source=source))

    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    assert (crawl.pages_done, crawl.pages_failed) == (3, 1)
    assert crawl.errors["extract_timeout"] == 1
    deep = FrontierUrl.objects.get(crawl=crawl, url__endswith="/deep")
    assert deep.state == "failed"
    assert deep.error == "extract_timeout: amount: reading the page took longer than 2 s"
    event = CrawlEvent.objects.get(crawl=crawl, type=events.PAGE_ERROR)
    assert event.payload["class"] == "extract_timeout"
    assert event.payload["field"] == "amount"
    titles = set(source.bids.values_list("title", flat=True))
    assert titles == {"Hostile page: plain", "Hostile page: backtrack"}
