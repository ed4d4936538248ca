"""The hub's fan-out to many sockets of one crawl (crawls.realtime.Hub, CrawlEventConsumer's
hub_message) and its safety net, under a real daphne, PostgreSQL and Redis.

A "lost doorbell" is an event committed to the log whose channel layer message never went out:
the streams must find it in the log (on the next sequence's gap, or the hub's check).
"""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection, transaction

from crawls import events
from crawls.models import Crawl, CrawlEvent
from tests.clients import session_cookie
from tests.processes import program_env, start_daphne
from tests.test_streams import (
    append,
    last_seq,
    logged,
    make_crawl,
    receive,
    receive_until_closed,
    ws,
)

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 6


def append_unpublished(crawl: Crawl, kind: str = events.PROGRESS) -> int:
    """Commit an event to the crawl's log as event_append does, but publish nothing."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crawls_crawl SET event_seq = event_seq + 1 WHERE id = %s "
                "RETURNING event_seq",
                [crawl.pk],
            )
            (sequence,) = cursor.fetchone()
        CrawlEvent.objects.create(
            workspace_id=crawl.workspace_id, crawl_id=crawl.pk, sequence=sequence, type=kind
        )
    return sequence


@pytest.fixture
def checking(tmp_path):
    """A daphne whose safety net runs every half second."""
    server = start_daphne(program_env(STREAM_CHECK_SECONDS="0.5"), tmp_path / "daphne.log")
    yield server
    server.stop()


def test_every_socket_gets_each_event_once_in_order_across_a_lost_doorbell(
    daphne_server, owner, workspace_a
):
    crawl = make_crawl(workspace_a)
    cookie = session_cookie(owner)
    with contextlib.ExitStack() as stack:
        path = f"/ws/crawls/{crawl.pk}/"
        opened = (ws(daphne_server, path, cookie=cookie) for _ in range(SOCKETS))
        sockets = [stack.enter_context(s) for s in opened]
        first = last_seq(crawl)
        append(crawl, 3)
        for s in sockets:  # live, through the hub
            assert [m["seq"] for m in receive(s, first + 3)] == list(range(1, first + 4))
        append_unpublished(crawl)
        append(crawl, 3, final=True)  # the first of these reveals the gap
        results = [receive_until_closed(s) for s in sockets]
    end = first + 7
    for received, code in results:
        assert [m["seq"] for m in received] == list(range(first + 4, end + 1))
        assert received == logged(crawl, first + 3)
        assert code == 1000


def test_the_hubs_safety_net_delivers_a_final_event_whose_doorbell_was_lost(
    checking, owner, workspace_a
):
    crawl = make_crawl(workspace_a)
    cookie = session_cookie(owner)
    with contextlib.ExitStack() as stack:
        path = f"/ws/crawls/{crawl.pk}/"
        opened = (ws(checking, path, cookie=cookie) for _ in range(SOCKETS))
        sockets = [stack.enter_context(s) for s in opened]
        first = last_seq(crawl)
        append(crawl, 2)
        for s in sockets:
            assert [m["seq"] for m in receive(s, first + 2)] == list(range(1, first + 3))
        # Nothing follows it: no gap reveals it; only the log check can.
        final = append_unpublished(crawl, events.SUCCEEDED)
        results = [receive_until_closed(s) for s in sockets]
    for received, code in results:
        assert [m["seq"] for m in received] == [final]
        assert received == logged(crawl, first + 2)
        assert code == 1000
