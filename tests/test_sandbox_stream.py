"""The streaming sandbox (crawls/engine/sandbox_stream.py): pages sent as they come, answers
read as they arrive; a page that overruns its budget among others is named, the others read."""

from __future__ import annotations

import asyncio

from crawls.engine import rules
from crawls.engine.request import Request
from crawls.engine.sandbox_stream import StreamSandbox
from tests.test_hostile_rules import DEEP_PAGE, HOSTILE_RULES


def _plain(n: int) -> str:
    return f'<h1 class="notice-title">Plain {n}</h1><table><tr><td class="amount">a{n}'


async def _read_all(stream: StreamSandbox, pages: list[str]):
    async def read(n: int, html: str):
        url = f"http://board.test/{n}"
        return await stream.extract(
            html, url=url, want_links=False, want_fields=True, request=Request(url),
            status=200, link_next=None,
        )  # fmt: skip

    return await asyncio.gather(*(read(n, html) for n, html in enumerate(pages)))


def test_a_page_that_overruns_inside_a_group_is_named_and_the_others_are_read():
    stream = StreamSandbox(rules.rules_parse(HOSTILE_RULES), budget=0.5, kill_after=0.5)
    pages = [_plain(0), DEEP_PAGE, _plain(2), _plain(3), _plain(4), DEEP_PAGE, _plain(6)]
    try:
        read = asyncio.run(_read_all(stream, pages))
    finally:
        stream.close()
    assert [page.timeout for page in read] == [None, "amount", None, None, None, "amount", None]
    for n in (0, 2, 3, 4, 6):
        assert read[n].fields is not None
        assert read[n].fields["title"] == f"Plain {n}"
    assert read[1].fields is None  # nothing half-read leaves the child


def test_the_stream_reads_many_pages_in_order_of_their_answers():
    stream = StreamSandbox(rules.rules_parse(HOSTILE_RULES), budget=5, kill_after=5)
    try:
        read = asyncio.run(_read_all(stream, [_plain(n) for n in range(40)]))
    finally:
        stream.close()
    assert [page.fields["title"] for page in read] == [f"Plain {n}" for n in range(40)]
