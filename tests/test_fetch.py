"""The fetcher against a real demo board: SSRF refusals (direct, through redirects, through DNS),
bounded hostile pages, robots.txt, retries and conditional GET. No database needed."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

from crawls.demo.board import PRIVATE_PATH, BoardConfig, start_board
from crawls.engine.fetch import Fetcher, FetchSettings
from crawls.engine.guard import Allowlist
from tests.factories import absent_notice_path


class Listener:
    """A TCP port that counts the connections made to it: proof that nothing was fetched."""

    def __init__(self, host: str):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def listeners():
    """Internal services a hostile page would love to reach: 127.0.0.2:P and 127.0.0.1:Q."""
    other_loopback, same_host = Listener("127.0.0.2"), Listener("127.0.0.1")
    yield other_loopback, same_host
    assert (other_loopback.accepted, same_host.accepted) == (0, 0), "an internal port was reached"
    other_loopback.close()
    same_host.close()


class StubDNS(AbstractResolver):
    """DNS is outside our walls: these names resolve where a rebinding attacker points them."""

    NAMES = {"rebind.test": "127.0.0.2", "metadata.test": "169.254.169.254"}

    def __init__(self):
        self.system = ThreadedResolver()  # for everything else (localhost: /etc/hosts)

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if host not in self.NAMES:
            return await self.system.resolve(host, port, family)
        address = self.NAMES[host]
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self):
        await self.system.close()


def fetch(paths: list[str], *, config: BoardConfig | None = None, **settings):
    """Fetch each path of a fresh demo board (or each URL, for what is not a path)."""

    async def main():
        runner, port = await start_board(config or BoardConfig(listing_pages=1))
        board = f"127.0.0.1:{port}"
        options = {"timeout": 5.0, "retries": 1, "backoff": 0.05, **settings}
        fetch_settings = FetchSettings(
            allowlist=Allowlist.parse([board]), user_agent="ForestTest/1", **options
        )
        try:
            async with Fetcher(fetch_settings, base_resolver=StubDNS()) as fetcher:
                results = []
                for path in paths:
                    url = f"http://{board}{path}" if path.startswith("/") else path
                    results.append(await fetcher.get(url))
                return results
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def hostile_urls(listeners) -> list[tuple[str, str]]:
    """(URL, what the refusal must mention): at least 30, direct and through redirects."""
    other, same = listeners
    targets = [
        (f"http://127.0.0.2:{other.port}/", "loopback"),
        (f"http://127.0.0.1:{same.port}/", "loopback"),  # allowlisted host, another port
        (f"http://localhost:{same.port}/", "loopback"),  # a name, refused at resolve time
        (f"http://[::1]:{same.port}/", "loopback"),
        (f"http://[::ffff:127.0.0.1]:{same.port}/", "loopback"),
        (f"http://0x7f000001:{same.port}/", "loopback"),
        (f"http://2130706433:{same.port}/", "loopback"),
        (f"http://017700000001:{same.port}/", "loopback"),
        (f"http://127.1:{same.port}/", "loopback"),
        (f"http://0.0.0.0:{same.port}/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://100.100.100.200/latest/meta-data/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "shared"),
        (f"http://rebind.test:{other.port}/", "loopback"),  # DNS points a name inside
        ("http://metadata.test/latest/meta-data/", "metadata"),
        ("file:///etc/passwd", "scheme"),
        (f"http://user:secret@127.0.0.2:{other.port}/", "credentials"),
    ]
    direct = [(url, reason) for url, reason in targets if not url.startswith("http://rebind")]
    redirected = [(f"/hostile/redirect?to={url}", reason) for url, reason in targets]
    chained = [
        (
            f"/hostile/redirect?to=/hostile/redirect%3Fto%3Dhttp://127.0.0.2:{other.port}/",
            "loopback",
        )
    ]
    return direct + redirected + chained


def test_every_hostile_url_is_refused_and_nothing_internal_is_reached(listeners):
    cases = hostile_urls(listeners)
    assert len(cases) >= 30
    responses = fetch([url for url, _ in cases])
    for (url, reason), response in zip(cases, responses, strict=True):
        assert response.error_class == "refused", (url, response)
        assert reason in response.error.lower(), (url, response.error)
        assert response.body is None


def test_a_redirect_to_a_public_page_of_the_board_is_followed():
    (response,) = fetch(["/hostile/redirect?to=/notices/page/1"])
    assert (response.status, response.error_class) == (200, None)
    assert response.url.endswith("/notices/page/1")
    assert b"pagination" in response.body


@pytest.mark.parametrize(
    ("path", "error_class", "mentions"),
    [
        ("/hostile/gzip-bomb", "too_large", "decompresses"),
        ("/hostile/huge", "too_large", "over"),
        ("/hostile/huge?declare=1", "too_large", "Content-Length"),
        ("/hostile/slow-headers", "timeout", "timed out"),
        ("/hostile/slow-body", "timeout", "timed out"),
        ("/hostile/loop", "redirects", "more than 5"),
        ("/hostile/chain/6", "redirects", "more than 5"),
        ("/hostile/pdf", "non_html", "application/pdf"),
        (PRIVATE_PATH, "robots", "robots.txt"),
        (absent_notice_path(BoardConfig(listing_pages=1)), "http_4xx", "404"),
    ],
)
def test_hostile_pages_are_bounded(path, error_class, mentions):
    (response,) = fetch([path], timeout=1.5, retries=0)
    assert response.error_class == error_class, response
    assert mentions in response.error
    assert response.body is None


def test_bounded_pages_within_limits_are_read():
    chain, no_type = fetch(["/hostile/chain/5", "/hostile/no-type"])
    assert (chain.status, chain.error_class) == (200, None)
    assert b"End of the chain" in chain.body
    assert no_type.error_class is None  # no Content-Type, but it is HTML
    assert b"What am I?" in no_type.body


def test_robots_txt_can_be_ignored_when_the_source_says_so():
    (response,) = fetch([PRIVATE_PATH], obey_robots=False)
    assert (response.status, response.error_class) == (200, None)


def test_a_flaky_page_is_retried_and_a_broken_one_reported():
    config = BoardConfig(listing_pages=1, flaky_every=3, broken_every=5, missing_every=0)
    from crawls.demo.board import notices

    flaky = next(n for n in notices(config) if n.status == "flaky")
    broken = next(n for n in notices(config) if n.status == "broken")
    good, bad = fetch([flaky.path, broken.path], config=config, retries=2)
    assert (good.status, good.error_class) == (200, None)
    assert (bad.status, bad.error_class) == (500, "http_5xx")


def test_conditional_get_answers_not_modified():
    async def main():
        runner, port = await start_board(BoardConfig(listing_pages=1))
        settings = FetchSettings(allowlist=Allowlist.parse([f"127.0.0.1:{port}"]), user_agent="t")
        try:
            async with Fetcher(settings) as fetcher:
                url = f"http://127.0.0.1:{port}/notices/page/1"
                first = await fetcher.get(url)
                again = await fetcher.get(url, etag=first.etag)
                by_date = await fetcher.get(url, last_modified=first.last_modified)
                return first, again, by_date
        finally:
            await runner.cleanup()

    first, again, by_date = asyncio.run(main())
    assert first.etag
    assert (again.status, again.not_modified, again.body) == (304, True, None)
    assert (by_date.status, by_date.not_modified) == (304, True)
