"""Helpers of the tests that run whole crawls through real Celery workers."""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models import Count

from crawls.demo.board import expected_bids
from crawls.models import Bid, Crawl, SubscriberCursor
from tests.processes import Program, program_env, python


def wait_for_crawl(crawl: Crawl, *, timeout: float = 120) -> Crawl:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crawl.refresh_from_db()
        if crawl.status in Crawl.FINISHED:
            return crawl
        time.sleep(0.2)
    raise TimeoutError(f"crawl {crawl.pk} still {crawl.status} after {timeout}s")


def worker_caught_up() -> bool:
    """Every subscriber has taken every event of every finished crawl."""
    finished = dict(
        Crawl.objects.filter(status__in=Crawl.FINISHED, event_seq__gt=0).values_list(
            "pk", "event_seq"
        )
    )
    taken = SubscriberCursor.objects.filter(
        crawl_id__in=finished, subscriber__in=settings.CRAWL_EVENT_SUBSCRIBERS
    ).values_list("crawl_id", "subscriber", "position")
    done = {(crawl, path) for crawl, path, position in taken if position >= finished[crawl]}
    return len(done) == len(finished) * len(settings.CRAWL_EVENT_SUBSCRIBERS)


def stored_bids(source) -> dict[str, dict]:
    return {
        bid.url: {
            "title": bid.title,
            "department": bid.department,
            "views": bid.views,
            "amount": bid.amount,
            "post_date": bid.post_date,
            "deadline": bid.deadline,
            "reference": bid.reference,
            "extra": bid.extra,
        }
        for bid in Bid.objects.filter(source=source)
    }


def start_worker(queue: str, tmp_path, name: str, **env) -> Program:
    worker = Program(
        python(
            "-m", "celery", "-A", "project", "worker", "-l", "INFO", "-c", "1",
            "-Q", queue, "-n", f"{name}@%h",
        ),
        env=program_env(CRAWL_QUEUE=queue, **env),
        log=tmp_path / f"{name}.log",
    )  # fmt: skip
    worker.wait_until(lambda: "ready." in worker.output(), what=f"worker {name}")
    return worker


def assert_exactly_expected(source, board, crawl):
    expected = expected_bids(board.config, base_url=board.base_url)
    assert stored_bids(source) == expected
    duplicates = (
        Bid.objects.filter(source=source).values("url").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    assert crawl.items_new == len(expected)
