"""The demo board (crawls.demo): deterministic content; a crawl with DEMO_RULES stores exactly
expected_bids; error, duplicate and private pages; conditional GET; epochs; the hostile
endpoints; the static export and `manage.py demo_board`. Each test runs its own real server."""

import asyncio
import hashlib
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from io import StringIO
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from django.core.management import call_command
from protego import Protego
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from w3lib.url import url_query_cleaner

from crawls.demo.board import (
    DEMO_RULES,
    NEW_PER_EPOCH,
    PRIVATE_PATH,
    BoardConfig,
    changed_between,
    expected_bids,
    export_static,
    listing,
    notices,
    render_site,
    start_board,
)
from tests.factories import absent_notice_path
from tests.processes import BASE_DIR, Program, free_port, http_status, program_env, python

KNOWN_FIELDS = {"title", "department", "views", "amount", "post_date", "deadline", "reference"}
MiB = 1024 * 1024


class RunningBoard:
    """start_board() on a free port, its event loop in a thread of its own."""

    def __init__(self, config: BoardConfig):
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.runner, self.port = self._run(start_board(config))
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)

    def close(self) -> None:
        self._run(self.runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def serve():
    boards = []

    def start(config: BoardConfig | None = None) -> RunningBoard:
        boards.append(RunningBoard(config or BoardConfig()))
        return boards[-1]

    yield start
    for board in boards:
        board.close()


def get(url: str, headers: dict[str, str] | None = None, *, timeout: float = 10):
    """(status, headers, body) of one raw GET: no redirects followed, nothing decompressed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def hrefs(body: bytes, css: str) -> list[str]:
    return [a.attributes["href"] for a in HTMLParser(body.decode()).css(css)]


def canonical(href: str, page_url: str) -> str:
    """What a crawler keeps of a link: absolute, without ignored parameters nor fragment."""
    return url_query_cleaner(urljoin(page_url, href), DEMO_RULES["ignore_params"], remove=True)


def extract(body: str, page_url: str) -> dict:
    """DEMO_RULES' fields of a detail page, parsed the simple way a crawler would."""
    tree = HTMLParser(body)
    zone = ZoneInfo(DEMO_RULES["timezone"])
    record: dict = {"extra": {}}
    for name, spec in DEMO_RULES["fields"].items():
        rule = {"css": spec} if isinstance(spec, str) else spec
        node = tree.css_first(rule["css"])
        if node is None:
            assert not rule.get("required"), name
            continue
        raw = node.attributes[rule["attr"]] if "attr" in rule else node.text(strip=True)
        if "regex" in rule:
            raw = re.search(rule["regex"], raw).group(0)
        kind = rule.get("type", "text")
        if kind == "int":
            value = int(raw.replace(",", ""))
        elif kind == "decimal":
            value = Decimal(raw.replace(",", ""))
        elif kind in ("date", "datetime"):
            for fmt in rule["formats"]:
                try:
                    value = datetime.strptime(raw, fmt).replace(tzinfo=zone)
                    break
                except ValueError:
                    continue
            else:
                pytest.fail(f"{name}: {raw!r} matches none of {rule['formats']}")
            value = value.date() if kind == "date" else value
        else:
            value = urljoin(page_url, raw) if rule.get("attr") == "href" else raw
        (record if name in KNOWN_FIELDS else record["extra"])[name] = value
    return record


@dataclass
class Crawl:
    bids: dict[str, dict] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    listings: list[str] = field(default_factory=list)
    items: set[str] = field(default_factory=set)
    disallowed: set[str] = field(default_factory=set)


async def _crawl(base_url: str) -> Crawl:
    result = Crawl()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/robots.txt") as response:
            robots = Protego.parse(await response.text())
        queue = [f"{base_url}/notices"]
        while queue:
            url = queue.pop(0)
            if url in result.listings:
                continue
            result.listings.append(url)
            async with session.get(url) as response:
                assert response.status == 200, url
                body = (await response.read()).decode()
            for css in DEMO_RULES["follow"]:
                queue += [canonical(a.attributes["href"], url) for a in HTMLParser(body).css(css)]
            for css in DEMO_RULES["items"]:
                for a in HTMLParser(body).css(css):
                    link = canonical(a.attributes["href"], url)
                    allowed = robots.can_fetch(link, "forest")
                    (result.items if allowed else result.disallowed).add(link)

        async def fetch_item(url: str) -> None:
            for attempt in (1, 2):  # one retry of a server error
                async with session.get(url) as response:
                    if response.status >= 500 and attempt == 1:
                        continue
                    if response.status != 200:
                        return
                    body = (await response.read()).decode()
                    result.etags[url] = response.headers["ETag"]
                    break
            link = HTMLParser(body).css_first('link[rel="canonical"]').attributes["href"]
            assert urljoin(url, link) == url
            result.bids[url] = extract(body, url)

        await asyncio.gather(*(fetch_item(url) for url in result.items))
    return result


def crawl(base_url: str) -> Crawl:
    """A minimal crawler: obeys robots.txt, follows DEMO_RULES, retries 5xx once."""
    return asyncio.run(_crawl(base_url))


def by_status(config: BoardConfig, status: str) -> list[int]:
    return [n.id for n in notices(config) if n.status == status]


# --- Content ------------------------------------------------------------------------------------

DIGEST = """
import hashlib
from crawls.demo.data import BoardConfig, notices
from crawls.demo.site import render_site
config = BoardConfig(seed={seed})
pages = render_site(config, {epoch})
text = repr(notices(config, {epoch})) + "".join(f"{{p}}{{pages[p].etag}}" for p in sorted(pages))
print(hashlib.sha256(text.encode()).hexdigest())
"""


def board_digest(seed: int, epoch: int) -> str:
    config = BoardConfig(seed=seed)
    pages = render_site(config, epoch)
    text = repr(notices(config, epoch)) + "".join(f"{p}{pages[p].etag}" for p in sorted(pages))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("epoch", [0, 2])
def test_the_board_is_the_same_in_every_process(epoch):
    here = board_digest(1, epoch)
    there = subprocess.run(
        [sys.executable, "-c", DIGEST.format(seed=1, epoch=epoch)],
        cwd=BASE_DIR,
        env={"PYTHONHASHSEED": "random", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert there == here
    assert board_digest(1, epoch) == here
    assert notices(BoardConfig(seed=1), epoch) == notices(BoardConfig(seed=1), epoch)
    assert board_digest(2, epoch) != here


def test_notices_mix_languages_formats_and_behaviours():
    config = BoardConfig()
    listed = notices(config)
    assert [n.id for n in listed] == sorted((n.id for n in listed), reverse=True)
    assert len({n.reference for n in listed}) == len(listed)
    assert [n.post_date for n in listed] == sorted((n.post_date for n in listed), reverse=True)
    titles = " ".join(n.title for n in listed)
    assert "[입찰]" in titles
    assert "Tender: Supply of" in titles
    assert "&" in titles
    assert any(n.department.isascii() for n in listed)
    assert any(not n.department.isascii() for n in listed)
    assert {"missing", "broken", "flaky", "ok"} == {n.status for n in listed}
    assert any(n.slow for n in listed)
    pages = render_site(config)
    bodies = b"".join(pages[n.path].body() for n in listed if n.status == "ok")
    for pattern in (
        rb"\xe2\x82\xa9[\d,]+<",
        rb"KRW [\d,]+<",
        rb"20\d\d\.\d\d\.\d\d<",
        rb"-\d\d-\d\d<",
    ):
        assert re.search(pattern, bodies), pattern
    sizes = [len(pages[n.path].body()) for n in listed if n.status == "ok"]
    assert min(sizes) >= 10_000
    assert max(sizes) <= 20_000


def test_the_bench_board_has_only_well_behaved_pages():
    config = BoardConfig.bench(1000)
    listed = notices(config)
    assert len(listed) == 1000
    assert {n.status for n in listed} == {"ok"}
    assert not any(n.slow for n in listed)
    assert [len(page) for page in listing(config)] == [20] * 50
    assert not config.hostile
    assert len(expected_bids(config, base_url="http://x")) == 1000


def test_a_bad_config_is_refused():
    with pytest.raises(ValueError, match="duplicate_every"):
        BoardConfig(duplicate_every=1)
    with pytest.raises(ValueError, match="listing_pages"):
        BoardConfig(listing_pages=0)


# --- Serving ------------------------------------------------------------------------------------


def test_robots_txt_and_the_sitemap(serve):
    config = BoardConfig(crawl_delay=2.5)
    board = serve(config)
    status, headers, body = get(f"{board.url}/robots.txt")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    assert lines[0] == "User-agent: *"
    assert "Disallow: /private/" in lines
    assert "Crawl-delay: 2.5" in lines
    assert f"Sitemap: {board.url}/sitemap.xml" in lines
    robots = Protego.parse(body.decode())
    assert not robots.can_fetch(f"{board.url}{PRIVATE_PATH}", "forest")
    assert robots.can_fetch(f"{board.url}/notices/1", "forest")
    assert robots.crawl_delay("forest") == 2.5
    assert b"Crawl-delay" not in render_site(BoardConfig())["/robots.txt"].body("http://h")

    status, headers, body = get(f"{board.url}/sitemap.xml")
    assert status == 200
    assert headers["Content-Type"] == "application/xml"
    locs = re.findall(r"<loc>([^<]+)</loc>", body.decode())
    assert len(locs) == len(set(locs))
    assert set(locs) == {f"{board.url}{n.path}" for n in notices(config) if n.status != "missing"}

    # The private page exists, and page 1 links to it.
    assert get(f"{board.url}{PRIVATE_PATH}")[0] == 200
    assert PRIVATE_PATH in hrefs(get(f"{board.url}/notices")[2], "table.notices td.title a")


def test_listing_pages_link_per_page_notices_and_paginate_to_the_last(serve):
    config = BoardConfig(listing_pages=6, per_page=15)
    board = serve(config)
    url, visited = f"{board.url}/notices", []
    while url:
        status, _, body = get(url)
        assert status == 200
        links = [canonical(h, url) for h in hrefs(body, "table.notices td.title a")]
        notice_links = [link for link in links if not link.endswith(PRIVATE_PATH)]
        assert all(re.fullmatch(rf"{board.url}/notices/\d+", link) for link in notice_links)
        visited.append((url, len(notice_links), len(links)))
        nav = HTMLParser(body.decode()).css_first("nav.pagination")
        numbers = {int(a.text()) for a in nav.css("a") if a.text().isdigit()}
        assert int(nav.css_first('strong[aria-current="page"]').text()) == len(visited)
        assert numbers == set(range(1, 7)) - {len(visited)}
        following = hrefs(body, 'nav.pagination a[rel="next"]')
        url = urljoin(url, following[0]) if following else None
    assert len(visited) == len(listing(config)) == 6
    assert visited[-1][0] == f"{board.url}/notices/page/6"
    assert [count for _, count, _ in visited] == [15] * 6
    assert visited[0][2] == 16  # and the private link
    # Relative and absolute-URL forms resolve to the same places as absolute paths.
    raw = hrefs(get(f"{board.url}/notices/page/2")[2], "table.notices td.title a")
    assert any(h.startswith("../") for h in raw)
    assert any(h.startswith(f"{board.url}/notices/") for h in raw)
    assert any(h.startswith("notices/") for h in hrefs(get(f"{board.url}/notices")[2], "td a"))


def test_detail_pages_show_their_notice(serve):
    config = BoardConfig()
    board = serve(config)
    expected = expected_bids(config, base_url=board.url)
    ok = [n for n in notices(config) if n.status == "ok" and not n.slow]
    sample = [ok[0], ok[-1], next(n for n in ok if "&" in n.title), ok[len(ok) // 2]]
    for notice in sample:
        url = f"{board.url}/notices/{notice.id}"
        status, headers, body = get(url)
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        tree = HTMLParser(body.decode())
        assert tree.css_first('link[rel="canonical"]').attributes["href"] == notice.path
        assert tree.css_first("h1.notice-title").text() == notice.title
        assert tree.css_first("dd.department").text() == notice.department
        assert tree.css_first("dd.reference").text() == notice.reference
        assert tree.css_first("dd.views").text() == f"{notice.views:,}"
        assert tree.css_first("dd.deadline").text() == notice.deadline.strftime("%Y-%m-%d %H:%M")
        amount = tree.css_first("dd.amount").text()
        assert re.sub(r"\D", "", amount) == str(int(notice.amount))
        assert extract(body.decode(), url) == expected[url]


def test_a_crawl_with_demo_rules_stores_exactly_expected_bids(serve):
    config = BoardConfig()
    board = serve(config)
    result = crawl(board.url)
    assert result.bids == expected_bids(config, base_url=board.url)
    assert result.disallowed == {f"{board.url}{PRIVATE_PATH}"}
    failing = {f"{board.url}/notices/{i}" for i in by_status(config, "missing")}
    failing |= {f"{board.url}/notices/{i}" for i in by_status(config, "broken")}
    assert result.items - result.bids.keys() == failing
    assert len(result.listings) == config.listing_pages


def test_missing_broken_and_flaky_pages(serve):
    config = BoardConfig()
    board = serve(config)
    for nid in by_status(config, "missing"):
        assert [get(f"{board.url}/notices/{nid}")[0] for _ in "ab"] == [404, 404]
    for nid in by_status(config, "broken"):
        assert [get(f"{board.url}/notices/{nid}")[0] for _ in "ab"] == [500, 500]
    flaky = by_status(config, "flaky")
    assert flaky
    for nid in flaky:
        assert [get(f"{board.url}/notices/{nid}")[0] for _ in "abc"] == [500, 200, 200]
    # Flaky once per server: another one fails again.
    assert get(f"{serve(config).url}/notices/{flaky[0]}")[0] == 500
    slow = next(n for n in notices(config) if n.slow and n.status == "ok")
    assert get(f"{board.url}{slow.path}")[0] == 200
    assert get(f"{board.url}{absent_notice_path(config)}")[0] == 404
    assert get(f"{board.url}/nothing/here")[0] == 404


def test_duplicate_links_lead_to_already_listed_notices(serve):
    config = BoardConfig()
    board = serve(config)
    links = []  # absolute URLs, in listing order
    for number in range(1, config.listing_pages + 1):
        page_url = f"{board.url}/notices/page/{number}"
        links += [
            urljoin(page_url, href)
            for href in hrefs(get(page_url)[2], "table.notices td.title a")
            if PRIVATE_PATH not in href
        ]
    duplicates = [(i, url) for i, url in enumerate(links) if "?" in url or "#" in url]
    assert {re.search(r"[?#].*", url).group(0) for _, url in duplicates} == {
        "?utm_source=list",
        "#top",
        "?from=sitemap",
    }
    for index, url in duplicates:
        assert canonical(url, board.url) in links[:index]  # listed before, by its plain URL
    assert len({canonical(url, board.url) for url in links}) == len(notices(config))
    assert len(links) == config.listing_pages * config.per_page

    _, url = duplicates[0]
    status, _, body = get(url)
    assert status == 200
    assert body == get(canonical(url, board.url))[2]


def test_conditional_get_answers_304(serve):
    config = BoardConfig()
    board = serve(config)
    ok = next(n for n in notices(config) if n.status == "ok" and not n.slow)
    for path in (ok.path, "/notices", "/notices/page/2"):
        status, headers, _ = get(f"{board.url}{path}")
        assert status == 200
        etag, last_modified = headers["ETag"], headers["Last-Modified"]
        assert etag.startswith('"')
        assert get(f"{board.url}{path}")[1]["ETag"] == etag
        cases = [
            ({"If-None-Match": etag}, 304),
            ({"If-None-Match": f'"nope", W/{etag}'}, 304),
            ({"If-None-Match": '"nope"'}, 200),
            ({"If-Modified-Since": last_modified}, 304),
            ({"If-Modified-Since": "Sun, 01 Nov 2026 00:00:00 GMT"}, 200),
            ({"If-Modified-Since": "yesterday"}, 200),
            ({"If-None-Match": '"nope"', "If-Modified-Since": last_modified}, 200),
        ]
        for conditions, expected_status in cases:
            status, headers, body = get(f"{board.url}{path}", conditions)
            assert status == expected_status, (path, conditions)
            if status == 304:
                assert body == b""
                assert headers["ETag"] == etag


def _control(board: RunningBoard, *, post=None, query="") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=30)
    try:
        if post is None:
            conn.request("GET", f"/_control/epoch{query}")
        else:
            body = post if isinstance(post, bytes) else json.dumps(post).encode()
            conn.request("POST", "/_control/epoch", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_new_epoch_changes_exactly_what_changed_between_says(serve):
    config = BoardConfig()
    board = serve(config)
    before = crawl(board.url)
    assert _control(board) == (200, b'{"epoch": 0}')
    assert _control(board, post={"epoch": 1}) == (200, b'{"epoch": 1}')
    assert _control(board) == (200, b'{"epoch": 1}')

    after = crawl(board.url)
    assert after.bids == expected_bids(config, base_url=board.url, epoch=1)
    new, changed, unchanged = changed_between(config, base_url=board.url, old_epoch=0, new_epoch=1)
    assert new
    assert after.bids.keys() - before.bids.keys() == new
    assert before.bids.keys() == changed | unchanged
    assert {url for url in before.etags if before.etags[url] != after.etags[url]} == changed
    for name in ("views", "amount", "deadline"):
        assert any(before.bids[url][name] != after.bids[url][name] for url in changed), name
    assert all(before.bids[url] == after.bids[url] for url in unchanged)

    # The new notices head page 1; the listing shifted, so every page changed.
    newest = [n.id for n in notices(config, 1) if n.created_epoch == 1]
    assert len(newest) == NEW_PER_EPOCH
    first_rows = hrefs(get(f"{board.url}/notices")[2], "table.notices td.title a")
    assert [int(re.search(r"\d+", h).group(0)) for h in first_rows[:NEW_PER_EPOCH]] == newest
    assert len(after.listings) == len(listing(config, 1))

    changed_url, unchanged_url = sorted(changed)[0], sorted(unchanged)[0]
    assert get(changed_url, {"If-None-Match": before.etags[changed_url]})[0] == 200
    assert get(unchanged_url, {"If-None-Match": before.etags[unchanged_url]})[0] == 304

    assert _control(board, query="?set=0") == (200, b'{"epoch": 0}')
    assert get(changed_url)[1]["ETag"] == before.etags[changed_url]
    assert _control(board, post={"epoch": -1})[0] == 400
    assert _control(board, post=b"nonsense")[0] == 400
    assert _control(board, post={"epoch": True})[0] == 400
    assert _control(board, query="?set=abc")[0] == 400
    assert _control(board) == (200, b'{"epoch": 0}')


# --- Hostile endpoints ----------------------------------------------------------------------------


def test_hostile_redirects(serve):
    board = serve()
    for target in (
        "http://169.254.169.254/latest/meta-data/",
        f"http://127.0.0.2:{board.port}/",
        "file:///etc/passwd",
    ):
        status, headers, _ = get(f"{board.url}/hostile/redirect?to={target}")
        assert (status, headers["Location"]) == (302, target)
    assert get(f"{board.url}/hostile/redirect")[0] == 400
    status, headers, _ = get(f"{board.url}/hostile/loop")
    assert (status, headers["Location"]) == (302, "/hostile/loop")

    url, hops = f"{board.url}/hostile/chain/3", []
    while True:
        status, headers, body = get(url)
        if status != 302:
            break
        url = urljoin(url, headers["Location"])
        hops.append(urlsplit(url).path)
    assert hops == ["/hostile/chain/2", "/hostile/chain/1", "/hostile/chain/0"]
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"<html>" in body


def test_gzip_bomb_is_small_and_inflates_past_200_mb(serve):
    board = serve()
    status, headers, body = get(f"{board.url}/hostile/gzip-bomb")
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert len(body) < MiB
    inflater, data, total = zlib.decompressobj(31), body, 0
    while data and total < 200 * MiB:
        out = inflater.decompress(data, 4 * MiB)
        assert not out.strip(b"\0")
        total += len(out)
        data = inflater.unconsumed_tail
    assert total >= 200 * MiB


def test_huge_page_streams_50_mb(serve):
    board = serve()
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=30)
    try:
        conn.request("GET", "/hostile/huge")
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Transfer-Encoding"] == "chunked"
        total = 0
        while chunk := response.read(MiB):
            total += len(chunk)
        assert total == 50 * MiB
    finally:
        conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=30)
    try:
        conn.request("GET", "/hostile/huge?declare=1")
        assert conn.getresponse().headers["Content-Length"] == str(50 * MiB)
    finally:
        conn.close()


def test_slow_endpoints_do_not_answer_within_a_second(serve):
    board = serve()
    with pytest.raises(TimeoutError):
        get(f"{board.url}/hostile/slow-headers", timeout=1)

    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=10)
    try:
        conn.request("GET", "/hostile/slow-body")
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["Content-Length"] == "60"
        assert response.read(1) == b"<"
        conn.sock.settimeout(1)
        with pytest.raises(TimeoutError):
            response.read()
    finally:
        conn.close()


def test_pdf_and_no_content_type(serve):
    board = serve()
    status, headers, body = get(f"{board.url}/hostile/pdf")
    assert (status, headers["Content-Type"]) == (200, "application/pdf")
    assert body.startswith(b"%PDF-")
    status, headers, body = get(f"{board.url}/hostile/no-type")
    assert status == 200
    assert "Content-Type" not in headers
    assert body


def test_hostile_endpoints_only_when_asked(serve):
    board = serve(BoardConfig(hostile=False))
    for path in ("/hostile/loop", "/hostile/redirect?to=http://example.com/", "/hostile/pdf"):
        assert get(f"{board.url}{path}")[0] == 404
    assert get(f"{board.url}/notices")[0] == 200


# --- Export and command ---------------------------------------------------------------------------


def test_export_static_writes_every_page_that_answers_200(tmp_path):
    config = BoardConfig(listing_pages=3, per_page=10)
    count = export_static(config, tmp_path)
    served = [n for n in notices(config) if n.status in ("ok", "flaky")]
    assert count == 2 + len(listing(config)) + len(served) + 1  # robots, sitemap, …, private
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == count
    for path in ("robots.txt", "sitemap.xml", "notices/page/1", "notices/page/3", PRIVATE_PATH):
        assert (tmp_path / path.lstrip("/")).is_file(), path
    for n in notices(config):
        assert (tmp_path / f"notices/{n.id}").is_file() == (n in served)
    assert "Sitemap: /sitemap.xml" in (tmp_path / "robots.txt").read_text()
    for page in files:
        if page.parent.name in ("notices", "page"):
            assert 'href="http' not in page.read_text()
    page_2 = (tmp_path / "notices/page/2").read_bytes()
    assert "/notices/page/1" in hrefs(page_2, "nav.pagination a")

    again = tmp_path / "again"
    export_static(config, again, origin="https://static.test")
    assert "Sitemap: https://static.test/sitemap.xml" in (again / "robots.txt").read_text()


def test_demo_board_command_exports(tmp_path):
    out = StringIO()
    call_command(
        "demo_board",
        "--export",
        str(tmp_path),
        "--listing-pages",
        "2",
        "--per-page",
        "5",
        stdout=out,
    )
    count = len([p for p in tmp_path.rglob("*") if p.is_file()])
    assert count == export_static(BoardConfig(listing_pages=2, per_page=5), tmp_path / "check")
    assert f"Wrote {count} files" in out.getvalue()


@pytest.mark.slow
def test_demo_board_command_serves_until_sigterm(tmp_path):
    port = free_port()
    program = Program(
        python(
            "manage.py", "demo_board", "--port", str(port), "--listing-pages", "2", "--no-hostile"
        ),
        env=program_env(),
        log=tmp_path / "board.log",
    )
    try:
        program.wait_until(
            lambda: http_status(f"http://127.0.0.1:{port}/notices/page/2") == 200, what="demo board"
        )
        assert http_status(f"http://127.0.0.1:{port}/notices/page/3") == 404
        assert http_status(f"http://127.0.0.1:{port}/hostile/pdf") == 404
        program.signal(signal.SIGTERM)
        assert program.proc.wait(20) == 0
        assert f"http://127.0.0.1:{port}/notices" in program.output()
    finally:
        program.stop()
