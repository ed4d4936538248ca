"""A sequential pager (the bench's text board: each listing page names the next) is followed to
its end by crawls/engine/run.py, every page fetched and stored once, whatever the batch size."""

from __future__ import annotations

import threading
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import crawl_text
from crawls import services
from crawls.engine import run
from crawls.models import Bid, Crawl, FrontierUrl
from tests.factories import start_crawl


class _Counting(SimpleHTTPRequestHandler):
    """Static files, each request counted by path."""

    seen: Counter[str]

    def do_GET(self) -> None:
        self.seen[self.path] += 1
        super().do_GET()

    def guess_type(self, path) -> str:
        return "text/html; charset=utf-8"  # the board's files have no extension

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def text_board(tmp_path, settings):
    """The bench's text board (a sequential pager of 7 listing pages, 130 notices) served from
    files by a local server that counts the requests of each path."""
    items, pages = crawl_text.export(tmp_path, 130)
    handler = type("Handler", (_Counting,), {"seen": Counter()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    settings.CRAWL_ALLOWLIST = [*settings.CRAWL_ALLOWLIST, address]
    server.base_url = f"http://{address}"
    server.items, server.pages, server.seen = items, pages, handler.seen
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [200, 8])
def test_a_sequential_pager_is_crawled_to_its_end_every_page_once(
    workspace_a, text_board, settings, batch_size
):
    settings.CRAWL_BATCH_SIZE = batch_size  # 8: fewer leased URLs than a listing page names
    source = services.source_create(
        workspace=workspace_a,
        name="Text board",
        start_urls=[text_board.base_url + crawl_text.start_path()],
        rules=crawl_text.TEXT_RULES,
    )
    crawl = start_crawl(source)
    result = run.crawl_run(crawl.pk, owner="test")
    crawl.refresh_from_db()
    assert result.status == Crawl.Status.SUCCEEDED, (crawl.errors, crawl.error)
    assert (crawl.pages_done, crawl.pages_failed, crawl.pages_total) == (137, 0, 137)
    assert crawl.items_new == 130
    urls = FrontierUrl.objects.filter(crawl=crawl)
    assert urls.count() == 137
    assert set(urls.values_list("state", flat=True)) == {"done"}
    assert set(urls.values_list("attempts", flat=True)) == {1}
    pages = crawl_text.page_paths(text_board.items)
    assert {path: text_board.seen[path] for path in pages} == dict.fromkeys(pages, 1)
    stored = {bid.url.removeprefix(text_board.base_url): bid for bid in Bid.objects.all()}
    assert set(stored) == set(text_board.items)
    for path, item in text_board.items.items():
        assert (stored[path].title, stored[path].reference) == (item.title, item.reference)
