"""Requests beyond a plain GET: templates, identity, secrets filled only at send time and never
returned, POST bodies and redirects through the fetcher (against a real local server), the
SSRF guard on POSTs; procurement values normalised; the store applying versions in turn."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from aiohttp import web

from crawls.engine import normalize, store, urls
from crawls.engine.fetch import Fetcher, FetchSettings
from crawls.engine.guard import Allowlist
from crawls.engine.request import (
    FORM,
    JSON,
    MissingSecret,
    Request,
    TemplateError,
    fill,
    form_body,
    item_hash,
    json_body,
    placeholders,
    redact,
    request_hash,
    resolve,
)
from crawls.models import Bid, BidRevision
from tests.factories import start_crawl

SECRET = "k3y+With/Slash=="  # an open-data portal's "decoded" key: needs encoding in URLs


# --- templates and identity -------------------------------------------------------------------


def test_fill_replaces_values_and_keeps_secrets_for_later():
    template = "page={page}&n={1}&key={secret.service_key}&literal={{x}}"
    assert fill(template, {"page": 2, "1": "abc"}) == (
        "page=2&n=abc&key={secret.service_key}&literal={x}"
    )
    assert placeholders(template) == {"page", "1", "secret.service_key"}
    with pytest.raises(TemplateError, match=r"\{offset\}"):
        fill("o={offset}", {"page": 1})
    assert fill("/a/{1}", {"1": "x y/z"}, quote_values=True) == "/a/x%20y%2Fz"


def test_identity_is_method_url_and_body():
    url = "https://board.test/notice/view.do"
    plain = Request(url)
    assert request_hash(plain) == urls.url_hash(url)  # frontiers and bids of old keep their keys
    post_a = Request(url, "POST", form_body({"nttId": "1"}), FORM)
    post_b = Request(url, "POST", form_body({"nttId": "2"}), FORM)
    assert len({request_hash(plain), request_hash(post_a), request_hash(post_b)}) == 3
    # Headers and pagination context do not make another request.
    with_headers = Request(url, "POST", post_a.body, FORM, (("X-A", "1"),), {"page": 3})
    assert request_hash(with_headers) == request_hash(post_a)
    assert item_hash("R-1") != item_hash("R-2") != urls.url_hash("R-1")


def test_requests_round_trip_through_the_frontier_column():
    request = Request(
        "https://api.test/bids?pageNo=2",
        "POST",
        json_body({"b": 1, "a": "{secret.key}"}),
        JSON,
        (("Authorization", "Bearer {secret.key}"),),
        {"page": 2},
    )
    assert request.body == '{"a":"{secret.key}","b":1}'  # sorted: equal bodies, equal strings
    data = json.loads(json.dumps(request.to_json()))
    assert Request.from_json(request.url, data) == request
    assert Request("https://a.test/").to_json() is None
    assert request.describe().startswith("POST https://api.test/bids?pageNo=2 {")


def test_secrets_resolve_encoded_in_urls_and_raw_elsewhere_and_redact_back():
    url = urls.canonicalize("https://api.test/bids?serviceKey={secret.key}&pageNo=1")
    resolved = resolve(url, {"key": SECRET})
    assert resolved == "https://api.test/bids?pageNo=1&serviceKey=k3y%2BWith%2FSlash%3D%3D"
    # A key handed out already encoded is not encoded twice.
    assert resolve(url, {"key": "k3y%2BWith"}).endswith("serviceKey=k3y%2BWith")
    assert resolve("Bearer {secret.key}", {"key": SECRET}) == f"Bearer {SECRET}"
    with pytest.raises(MissingSecret, match="key"):
        resolve(url, {})
    assert redact(f"{resolved} and {SECRET}", {"key": SECRET}) == (
        "https://api.test/bids?pageNo=1&serviceKey={secret.key} and {secret.key}"
    )


# --- normalised procurement values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("KRW", "KRW"),
        ("krw", "KRW"),
        ("4,477,000,000 KRW", "KRW"),
        ("₩ 1,000", "KRW"),
        ("1,000원", "KRW"),
        ("US$ 12.50", "USD"),
        ("€ 3", "EUR"),
        ("12 apples", None),
        ("", None),
        (None, None),
    ],
)
def test_currency_codes(text, code):
    assert normalize.currency_code(text) == code


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("active", "active"),
        ("공고중", "active"),
        ("Cancelled", "cancelled"),
        ("withdrawn", "cancelled"),
        ("complete", "awarded"),
        ("unsuccessful", "closed"),
        ("마감", "closed"),
        ("something else", "unknown"),
        (None, "unknown"),
    ],
)
def test_status_codes(text, status):
    assert normalize.status_code(text) == status


def test_status_map_comes_first_and_classifications_are_scheme_id():
    assert normalize.status_code("Open", {"open": "closed"}) == "closed"
    assert normalize.classification_codes(
        [{"scheme": "CPV", "id": "45000000"}, {"id": 7}, {"scheme": "CPV", "id": "45000000"}]
    ) == ["CPV:45000000", "7"]
    assert normalize.classification_codes("CPV:1; UNSPSC:2\nCPV:1") == ["CPV:1", "UNSPSC:2"]


# --- the fetcher: bodies, secrets, redirects --------------------------------------------------


class EchoServer:
    """A small HTTP server of our own on 127.0.0.1 that says what it received."""

    def __init__(self):
        self.seen: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/see-other", self._redirect(303))
        app.router.add_route("*", "/temporary", self._redirect(307))
        app.router.add_route("*", "/to-internal", self._to_internal)
        app.router.add_route("*", "/denied", self._denied)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _echo(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        self.seen.append(
            {
                "method": request.method,
                "query": dict(request.query),
                "body": body,
                "type": request.headers.get("Content-Type", ""),
                "auth": request.headers.get("Authorization", ""),
            }
        )
        return web.json_response(
            {"ok": True},
            headers={"Link": f'<http://127.0.0.1:{self.port}/echo?page=2>; rel="next"'},
        )

    def _redirect(self, status: int):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=status, headers={"Location": "/echo"})

        return handler

    async def _to_internal(self, request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "http://169.254.169.254/latest"})

    async def _denied(self, request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "key not registered"}}, status=401)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def echo():
    server = EchoServer()
    yield server
    server.close()


def _fetch(echo: EchoServer, request: Request, **settings) -> object:
    fetch_settings = FetchSettings(
        allowlist=Allowlist.parse([f"127.0.0.1:{echo.port}"]),
        user_agent="forest-test",
        obey_robots=False,
        retries=0,
        accept=None,
        secrets=(("key", SECRET),),
        **settings,
    )

    async def run():
        async with Fetcher(fetch_settings) as fetcher:
            return await fetcher.fetch(request)

    return asyncio.run(run())


def test_a_post_form_carries_its_body_and_secrets_filled_at_send_time(echo):
    base = f"http://127.0.0.1:{echo.port}"
    request = Request(
        urls.canonicalize(f"{base}/echo?serviceKey={{secret.key}}"),
        "POST",
        form_body({"nttId": "123", "token": "{secret.key}"}),
        FORM,
        (("Authorization", "Bearer {secret.key}"),),
    )
    response = _fetch(echo, request)
    assert response.ok, response.error
    seen = echo.seen[-1]
    assert seen["method"] == "POST"
    assert seen["type"] == FORM
    assert seen["query"] == {"serviceKey": SECRET}
    assert seen["auth"] == f"Bearer {SECRET}"
    assert "nttId=123" in seen["body"]
    assert SECRET in seen["body"].replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    # Nothing that leaves the fetcher holds the secret.
    assert SECRET not in response.url
    assert "k3y%2B" not in response.url
    assert "{secret.key}" in response.url
    assert response.link_next == f"{base}/echo?page=2"


def test_see_other_turns_a_post_into_a_get_and_307_keeps_it(echo):
    base = f"http://127.0.0.1:{echo.port}"
    form = form_body({"pageIndex": "2"})
    assert _fetch(echo, Request(f"{base}/see-other", "POST", form, FORM)).ok
    assert (echo.seen[-1]["method"], echo.seen[-1]["body"]) == ("GET", "")
    assert _fetch(echo, Request(f"{base}/temporary", "POST", form, FORM)).ok
    assert (echo.seen[-1]["method"], echo.seen[-1]["body"]) == ("POST", form)


def test_the_guard_refuses_posts_to_internal_targets_and_through_redirects(echo):
    seen = len(echo.seen)
    refused = _fetch(echo, Request("http://169.254.169.254/latest", "POST", "a=1", FORM))
    assert refused.error_class == "refused"
    hop = _fetch(echo, Request(f"http://127.0.0.1:{echo.port}/to-internal", "POST", "a=1", FORM))
    assert hop.error_class == "refused"
    assert "169.254.169.254" in hop.error
    internal = _fetch(echo, Request("http://127.0.0.1:1/echo", "POST", "a=1", FORM))
    assert internal.error_class == "refused"
    assert len(echo.seen) == seen


def test_a_missing_secret_is_an_error_not_a_request(echo):
    seen = len(echo.seen)
    response = _fetch(
        echo, Request(f"http://127.0.0.1:{echo.port}/echo", headers=(("X-Key", "{secret.nope}"),))
    )
    assert response.error_class == "secret"
    assert "nope" in response.error
    assert len(echo.seen) == seen


def test_an_error_body_is_kept_for_api_kinds_only(echo):
    url = f"http://127.0.0.1:{echo.port}/denied"
    kept = _fetch(echo, Request(url), error_bodies=True)
    assert kept.error_class == "http_4xx"
    assert json.loads(kept.body) == {"error": {"message": "key not registered"}}
    assert _fetch(echo, Request(url)).body is None


# --- the store: versions in turn, partial items -----------------------------------------------


def _item(key: str, version: str, partial: bool = False, **fields) -> store.Item:
    return store.Item(
        url=f"https://feed.test/#{key}",
        url_hash=item_hash(key),
        fields=fields,
        content_hash=urls.content_hash(fields),
        version=version,
        partial=partial,
    )


@pytest.mark.django_db
def test_versions_of_one_bid_in_one_batch_are_revisions_in_order(source_a):
    source, crawl = source_a, start_crawl(source_a)
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    items = [  # given newest first: applied oldest first
        _item("ocds-1", "2026-03", True, status="cancelled"),
        _item("ocds-1", "2026-01", True, title="Roads", amount=Decimal(100), currency="krw"),
        _item("ocds-1", "2026-02", True, amount=Decimal(120)),
    ]
    stored = store.bids_store(
        crawl_id=crawl.pk,
        source_id=source.pk,
        workspace_id=source.workspace_id,
        items=items,
        now=now,
    )
    bid = Bid.objects.get(source=source)
    assert (stored.new, stored.changed) == ([bid.pk], [])
    assert (bid.title, bid.amount, bid.currency, bid.status, bid.version) == (
        "Roads",
        Decimal(120),
        "KRW",
        "cancelled",
        "2026-03",
    )
    changes = [r.changes for r in BidRevision.objects.filter(bid=bid).order_by("id")]
    assert changes == [{"amount": ["100", "120"]}, {"status": ["unknown", "cancelled"]}]
    # The same releases again change nothing; an older one alone is not applied.
    again = store.bids_store(
        crawl_id=crawl.pk,
        source_id=source.pk,
        workspace_id=source.workspace_id,
        items=[*items, _item("ocds-1", "2025-12", True, title="Old title")],
        now=now,
    )
    assert (again.new, again.changed) == ([], [])
    assert BidRevision.objects.filter(bid=bid).count() == 2
    assert Bid.objects.get(pk=bid.pk).title == "Roads"
