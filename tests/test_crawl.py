"""Whole crawls of the demo board through real Celery workers, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from crawls import events, realtime, services
from crawls.demo.board import DEMO_RULES, changed_between, expected_bids, notices
from crawls.engine.store import jsonable
from crawls.models import Bid, BidRevision, Crawl, CrawlEvent, FrontierUrl, Source
from tests.crawling import assert_exactly_expected, start_worker, stored_bids, wait_for_crawl
from tests.processes import Program, http_get, program_env, python, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_crawl_of_the_demo_board_stores_exactly_the_expected_bids(
    celery_worker, demo_source, board
):
    crawl = wait_for_crawl(services.crawl_start(source=demo_source))
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    expected = expected_bids(board.config, base_url=board.base_url)
    assert stored_bids(demo_source) == expected
    assert crawl.items_new == len(expected)
    assert (crawl.items_changed, crawl.items_unchanged) == (0, 0)
    # listing pages + every distinct detail link + robots-disallowed /private/ link
    frontier = FrontierUrl.objects.filter(crawl=crawl)
    assert frontier.filter(kind="list").count() == board.config.listing_pages
    assert crawl.pages_total == frontier.count()
    statuses = Counter(n.status for n in notices(board.config))
    assert statuses["missing"] >= 1
    assert crawl.errors.get("http_4xx", 0) == statuses["missing"]
    assert crawl.errors.get("http_5xx", 0) == statuses["broken"]  # flaky ones were retried
    assert crawl.errors.get("robots") == 1
    private = frontier.get(url__contains="/private/")
    assert (private.state, private.error) == ("failed", "robots: disallowed by robots.txt")


def test_crawl_events_form_a_gapless_log_from_queued_to_succeeded(
    celery_worker, demo_source, board
):
    crawl = wait_for_crawl(services.crawl_start(source=demo_source))
    log = list(CrawlEvent.objects.filter(crawl=crawl).order_by("sequence"))
    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    types = [e.type for e in log]
    assert types[:2] == [events.QUEUED, events.STARTED]
    assert types[-1] == events.SUCCEEDED
    assert events.PROGRESS in types
    items = [e.payload for e in log if e.type == events.ITEMS]
    assert sum(len(p["new"]) for p in items) == crawl.items_new
    errors = [e.payload for e in log if e.type == events.PAGE_ERROR]
    assert {p["class"] for p in errors} >= {"http_4xx", "robots"}
    assert all(p["url"].startswith(board.base_url) for p in errors)
    final = log[-1].payload
    assert final["pages_done"] == crawl.pages_done
    assert final["items_new"] == crawl.items_new


def test_recrawl_marks_new_changed_and_unchanged_and_keeps_field_history(
    celery_worker, demo_source, board
):
    first = wait_for_crawl(services.crawl_start(source=demo_source))
    assert first.status == Crawl.Status.SUCCEEDED
    before = stored_bids(demo_source)
    assert http_get(f"{board.base_url}/_control/epoch?set=1")[0] == 200
    second = wait_for_crawl(services.crawl_start(source=demo_source))
    assert second.status == Crawl.Status.SUCCEEDED, second.error

    new, changed, unchanged = changed_between(
        board.config, base_url=board.base_url, old_epoch=0, new_epoch=1
    )
    assert (second.items_new, second.items_changed, second.items_unchanged) == (
        len(new),
        len(changed),
        len(unchanged),
    )
    assert stored_bids(demo_source) == expected_bids(board.config, base_url=board.base_url, epoch=1)
    after = stored_bids(demo_source)
    revisions = BidRevision.objects.filter(crawl=second).select_related("bid")
    assert {r.bid.url for r in revisions} == changed
    for revision in revisions:
        url = revision.bid.url
        fields = {n for n in before[url] if n != "extra" and before[url][n] != after[url][n]}
        assert set(revision.changes) == fields
        for name, (was, now) in revision.changes.items():
            assert (was, now) == (jsonable(before[url][name]), jsonable(after[url][name]))
    # Unchanged detail pages answered 304 to the conditional GET (ETag from the first crawl).
    not_modified = FrontierUrl.objects.filter(crawl=second, kind="item", last_status=304)
    assert not_modified.count() == len(unchanged)
    seen = Bid.objects.filter(source=demo_source, last_crawl=second).count()
    assert seen == len(new) + len(changed) + len(unchanged)


def test_a_source_with_overlap_policy_skip_refuses_a_second_active_crawl(demo_source):
    first = services.crawl_start(source=demo_source, workers=0)
    with pytest.raises(services.CrawlConflict) as conflict:
        services.crawl_start(source=demo_source, workers=0)
    assert conflict.value.active == first
    services.crawl_cancel(crawl=first)
    first.refresh_from_db()
    assert first.status == Crawl.Status.CANCELLED
    assert services.crawl_start(source=demo_source, workers=0).status == Crawl.Status.QUEUED


def test_manage_py_crawl_wait_follows_progress_to_the_end(celery_worker, demo_source, tmp_path):
    program = Program(
        python("manage.py", "crawl", str(demo_source.pk), "--wait"),
        env=program_env(),
        log=tmp_path / "crawl.log",
    )
    assert program.proc.wait(120) == 0, program.output()
    out = program.output()
    assert "queued" in out
    assert "succeeded" in out
    assert "pages" in out


# --- Crawls shared by several workers, and workers that die --------------------------------------


def test_two_workers_share_one_crawl(demo_source, board, isolated_queue, tmp_path):
    # Slow the crawl down (one request at a time, 20 ms apart) so both workers get batches.
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.02)
    env = {"CRAWL_BATCH_SIZE": "4"}
    workers = [start_worker(isolated_queue, tmp_path, f"w{i}", **env) for i in (1, 2)]
    try:
        crawl = wait_for_crawl(services.crawl_start(source=demo_source, workers=2))
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        assert_exactly_expected(demo_source, board, crawl)
        for worker in workers:
            assert "batch of" in worker.output(), "a worker did no batch of the crawl"
    finally:
        for worker in workers:
            worker.stop()


def test_a_worker_killed_mid_crawl_is_replaced_and_nothing_is_lost(
    demo_source, board, isolated_queue, tmp_path
):
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.03)
    env = {"CRAWL_BATCH_SIZE": "4", "CRAWL_LEASE_SECONDS": "3"}
    doomed = start_worker(isolated_queue, tmp_path, "doomed", **env)
    crawl = services.crawl_start(source=demo_source)
    doomed.wait_until(
        lambda: Crawl.objects.get(pk=crawl.pk).items_new >= 8, what="some progress", timeout=60
    )
    os.killpg(doomed.proc.pid, signal.SIGKILL)  # the whole worker: main process and its pool
    doomed.stop()
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.RUNNING
    assert crawl.items_new < len(expected_bids(board.config, base_url=board.base_url))

    fresh = start_worker(isolated_queue, tmp_path, "fresh", **env)
    try:
        # What beat's sweep does once the crawl has shown no sign of life for a while.
        wait_until(
            lambda: Crawl.objects.filter(pk=crawl.pk, heartbeat_at__lt=timezone.now()).exists(),
            what="a heartbeat in the past",
        )
        assert services.crawl_sweep(stall_seconds=0) == [crawl.pk]
        crawl = wait_for_crawl(crawl)
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        assert_exactly_expected(demo_source, board, crawl)
        types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
        assert events.RESUMED in types
    finally:
        fresh.stop()


def test_cancel_stops_a_running_crawl_within_one_batch(
    demo_source, board, isolated_queue, tmp_path
):
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.05)
    worker = start_worker(isolated_queue, tmp_path, "cancel", CRAWL_BATCH_SIZE="4")
    try:
        crawl = services.crawl_start(source=demo_source)
        worker.wait_until(
            lambda: Crawl.objects.get(pk=crawl.pk).pages_done >= 4, what="progress", timeout=60
        )
        services.crawl_cancel(crawl=crawl)
        done_at_cancel = Crawl.objects.get(pk=crawl.pk).pages_done
        crawl = wait_for_crawl(crawl, timeout=30)
        assert crawl.status == Crawl.Status.CANCELLED
        # The batch in flight when cancel arrived may finish; nothing after it starts.
        assert crawl.pages_done <= done_at_cancel + 4
        assert not FrontierUrl.objects.filter(crawl=crawl, state="leased").exists()
        types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
        assert types[-2:] == [events.CANCEL_REQUESTED, events.CANCELLED] or (
            types[-1] == events.CANCELLED and events.CANCEL_REQUESTED in types
        )
    finally:
        worker.stop()


def test_events_reach_the_crawl_and_workspace_groups_in_order(celery_worker, demo_source):
    crawl = services.crawl_start(source=demo_source, workers=0)  # subscribe before it runs

    async def listen() -> tuple[list[dict], list[dict]]:
        layer = get_channel_layer()
        by_crawl, by_workspace = await layer.new_channel(), await layer.new_channel()
        await layer.group_add(realtime.crawl_group(crawl.pk), by_crawl)
        await layer.group_add(realtime.workspace_group(crawl.workspace_id), by_workspace)
        await sync_to_async(services._enqueue)(crawl.pk)
        received: dict[str, list[dict]] = {by_crawl: [], by_workspace: []}
        for channel, messages in received.items():
            while not messages or messages[-1]["event"] not in events.FINAL_TYPES:
                messages.append(await asyncio.wait_for(layer.receive(channel), timeout=60))
        await layer.group_discard(realtime.crawl_group(crawl.pk), by_crawl)
        await layer.group_discard(realtime.workspace_group(crawl.workspace_id), by_workspace)
        return received[by_crawl], received[by_workspace]

    by_crawl, by_workspace = async_to_sync(listen)()
    log = {e.sequence: e for e in CrawlEvent.objects.filter(crawl=crawl)}
    for messages in (by_crawl, by_workspace):
        sequences = [m["seq"] for m in messages]
        assert sequences == sorted(set(sequences))  # in order, no duplicate
        assert sequences[0] == 2  # the first after `queued`, which came before we listened
        assert sequences[-1] == max(log)
        for message in messages:
            assert message["type"] == "crawl.event"
            assert message["event"] == log[message["seq"]].type
            assert message["payload"] == log[message["seq"]].payload


def test_manage_py_crawl_url_runs_a_one_off_crawl(celery_worker, workspace_a, board, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(DEMO_RULES))
    start = f"{board.base_url}/notices/page/2"
    command = ["manage.py", "crawl", "--url", start, "--workspace", workspace_a.slug]
    program = Program(
        python(*command, "--rules", str(rules), "--wait"), env=program_env(), log=tmp_path / "a"
    )
    assert program.proc.wait(120) == 0, program.output()
    source = Source.objects.get(workspace=workspace_a, name=f"one-off: {start}")
    assert source.crawls.get().status == Crawl.Status.SUCCEEDED
    assert Bid.objects.filter(source=source).count() == len(
        expected_bids(board.config, base_url=board.base_url)
    )

    refused = Program(python(*command), env=program_env(), log=tmp_path / "b")
    assert refused.proc.wait(60) == 2  # a usage error
    assert "--url needs --rules FILE" in refused.output()
