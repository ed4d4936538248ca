"""Fetching pages: aiohttp behind the SSRF guard, polite, bounded and retried.

A request is a GET of a URL or any crawls.engine.request.Request (a POST form, a JSON body,
headers): its {secret.NAME} placeholders are filled here, at send time, from the source's
secrets, and every URL or message that leaves the fetcher has them put back (request.redact).
Every URL, and every redirect hop (followed here, by hand), passes guard.check_url; every
connection is resolved by the guard's resolver, so a name that resolves to an internal address —
now or after a DNS change — is refused at connect time. Per host: a concurrency limit, a delay
between requests (the larger of the source's and robots.txt's Crawl-delay) and robots.txt rules.
Bounded: total time, body size, and decompressed size (bodies are decompressed here, with a
limit, not by aiohttp). Retried with exponential backoff: 5xx, 429, timeouts, connection errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from dataclasses import dataclass

import aiohttp
from protego import Protego
from yarl import URL

from crawls.engine import guard
from crawls.engine import request as requests_
from crawls.engine.request import Request
from project import tracing

HTML_TYPES = ("text/html", "application/xhtml+xml")
REDIRECTS = (301, 302, 303, 307, 308)
KEEP_METHOD = (307, 308)  # other redirects turn a POST into a GET without a body
# Of an error response (4xx, 5xx), this much of the body is kept when asked (an API's envelope).
ERROR_BODY_BYTES = 64 * 1024
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 64 * 1024


class TooLarge(Exception):
    pass


@dataclass(slots=True)
class Response:
    url: str  # the final URL, after redirects
    status: int | None = None
    body: bytes | None = None
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    error_class: str | None = None  # None: a page to extract from (or a 304)
    error: str = ""
    not_modified: bool = False
    link_next: str | None = None  # the Link header's rel="next", resolved

    @property
    def ok(self) -> bool:
        return self.error_class is None


@dataclass(frozen=True, slots=True)
class FetchSettings:
    allowlist: guard.Allowlist
    user_agent: str
    per_host: int = 8
    delay: float = 0.0
    obey_robots: bool = True
    concurrency: int = 32
    timeout: float = 20.0
    connect_timeout: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 0.5
    # Content types a body may have (None: any; the kind's reader judges it) and the Accept
    # header sent; error_bodies keeps up to ERROR_BODY_BYTES of a 4xx/5xx body.
    accept: tuple[str, ...] | None = HTML_TYPES
    accept_header: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
    error_bodies: bool = False
    # The source's secrets, filled into requests' {secret.NAME} placeholders when sent.
    secrets: tuple[tuple[str, str], ...] = ()


class _Host:
    """Politeness state of one host: a concurrency limit and the earliest next request time."""

    def __init__(self, per_host: int):
        self.semaphore = asyncio.Semaphore(per_host)
        self.lock = asyncio.Lock()
        self.next_at = 0.0
        self.delay = 0.0


class Fetcher:
    """One per crawl run, on one event loop. Use as `async with Fetcher(settings) as f`."""

    def __init__(self, settings: FetchSettings, *, base_resolver=None):
        self.settings = settings
        self._base_resolver = base_resolver
        self._session: aiohttp.ClientSession | None = None
        self._hosts: dict[str, _Host] = {}
        self._robots: dict[str, asyncio.Future] = {}
        self._secrets: dict[str, str] = dict(settings.secrets)

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        connector = guard.guarded_connector(
            allowlist=s.allowlist,
            base_resolver=self._base_resolver,
            limit=s.concurrency,
            limit_per_host=s.per_host,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=s.timeout, sock_connect=s.connect_timeout),
            headers={
                "User-Agent": s.user_agent,
                "Accept": s.accept_header,
                "Accept-Encoding": "gzip, deflate",
            },
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        tracing.crawl_session(self._session)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()

    # --- public ------------------------------------------------------------------------------

    async def get(self, url: str, *, etag: str = "", last_modified: str = "") -> Response:
        """Fetch `url` (following redirects); never raises for network or HTTP problems."""
        return await self.fetch(Request(url), etag=etag, last_modified=last_modified)

    async def fetch(self, request: Request, *, etag: str = "", last_modified: str = "") -> Response:
        """Send `request` (following redirects); never raises for network or HTTP problems.
        Secrets are filled in here and redacted from what is returned."""
        response = await self._fetch(request, etag, last_modified)
        if self._secrets:
            response.url = requests_.redact(response.url, self._secrets)
            response.error = requests_.redact(response.error, self._secrets)
            if response.link_next:
                response.link_next = requests_.redact(response.link_next, self._secrets)
        return response

    async def _fetch(self, request: Request, etag: str, last_modified: str) -> Response:
        try:
            url = requests_.resolve(request.url, self._secrets)
            body = requests_.resolve(request.body, self._secrets).encode() if request.body else b""
            headers = {k: requests_.resolve(v, self._secrets) for k, v in request.headers}
        except requests_.MissingSecret as exc:
            return Response(request.url, error_class="secret", error=str(exc))
        if body:
            headers["Content-Type"] = request.content_type or requests_.FORM
        try:
            target = guard.check_url(url, allowlist=self.settings.allowlist)
            if self.settings.obey_robots and not await self._robots_allow(target):
                return Response(url, error_class="robots", error="disallowed by robots.txt")
        except guard.Refused as refused:
            return Response(url, error_class="refused", error=refused.reason)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            response = await self._get_following_redirects(target, request.method, body, headers)
            retryable = response.error_class in ("timeout", "connection") or (
                response.status in RETRY_STATUSES
            )
            if not retryable or attempt >= self.settings.retries:
                return response
            attempt += 1
            pause = self.settings.backoff * 2 ** (attempt - 1)
            await asyncio.sleep(pause * (0.75 + random.random() / 2))  # noqa: S311 - jitter

    # --- internals -------------------------------------------------------------------------------

    async def _get_following_redirects(
        self, target: URL, method: str, body: bytes, headers: dict
    ) -> Response:
        for _hop in range(self.settings.max_redirects + 1):
            response, location = await self._send_once(target, method, body, headers)
            if location is None:
                return response
            try:
                target = guard.check_url(
                    str(target.join(URL(location))), allowlist=self.settings.allowlist
                )
                if self.settings.obey_robots and not await self._robots_allow(target):
                    return Response(
                        str(target), error_class="robots", error="disallowed by robots.txt"
                    )
            except guard.Refused as refused:
                return Response(
                    str(target), status=response.status, error_class="refused",
                    error=f"redirect to {location}: {refused.reason}",
                )  # fmt: skip
            except ValueError as exc:
                return Response(str(target), error_class="redirects", error=f"bad Location: {exc}")
            # Validators belong to the first URL only; a 301/302/303 turns a POST into a GET.
            headers = {
                k: v
                for k, v in headers.items()
                if k not in ("If-None-Match", "If-Modified-Since")
                and (response.status in KEEP_METHOD or k != "Content-Type")
            }
            if response.status not in KEEP_METHOD and method != "HEAD":
                method, body = "GET", b""
        return Response(
            str(target),
            error_class="redirects",
            error=f"more than {self.settings.max_redirects} redirects",
        )

    async def _send_once(
        self, target: URL, method: str, body: bytes, headers: dict
    ) -> tuple[Response, str | None]:
        """One request; returns the response and the redirect location, if any."""
        url = str(target)
        host = self._host(target)
        async with host.semaphore:
            await self._wait_turn(host)
            try:
                async with self._session.request(
                    method, target, data=body or None, headers=headers, allow_redirects=False
                ) as resp:
                    return await self._read_response(url, resp)
            except TimeoutError:
                return Response(url, error_class="timeout", error="timed out"), None
            except aiohttp.ClientError as exc:
                refused = guard.refusal_of(exc)
                if refused is not None:
                    return Response(url, error_class="refused", error=refused.reason), None
                return Response(url, error_class="connection", error=str(exc)[:300]), None
            except guard.Refused as refused:
                return Response(url, error_class="refused", error=refused.reason), None

    async def _read_response(self, url: str, resp) -> tuple[Response, str | None]:
        status = resp.status
        result = Response(
            url,
            status=status,
            content_type=resp.headers.get("Content-Type", ""),
            etag=resp.headers.get("ETag", ""),
            last_modified=resp.headers.get("Last-Modified", ""),
        )
        if status in REDIRECTS and "Location" in resp.headers:
            return result, resp.headers["Location"]
        if status == 304:
            result.not_modified = True
            return result, None
        if status >= 400:
            result.error_class = "http_5xx" if status >= 500 else "http_4xx"
            result.error = f"HTTP {status}"
            if self.settings.error_bodies:
                with contextlib.suppress(TooLarge, zlib.error, ValueError, aiohttp.ClientError):
                    result.body = await self._read_body(resp, limit=ERROR_BODY_BYTES)
            return result, None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if (link := resp.links.get("next")) and link.get("url") is not None:
                result.link_next = str(URL(url).join(link["url"]))
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.settings.max_bytes:
            result.error_class, result.error = "too_large", f"Content-Length {length}"
            return result, None
        mime = result.content_type.split(";", 1)[0].strip().lower()
        accept = self.settings.accept
        if mime and accept is not None and mime not in accept:
            result.error_class, result.error = "non_html", f"Content-Type {mime}"
            return result, None
        try:
            body = await self._read_body(resp)
        except TooLarge as exc:
            result.error_class, result.error = "too_large", str(exc)
            return result, None
        except (zlib.error, ValueError) as exc:
            result.error_class, result.error = (
                "decode",
                f"bad {resp.headers.get('Content-Encoding')}: {exc}",
            )
            return result, None
        if not mime and accept is not None and not _looks_like_html(body):
            result.error_class, result.error = "non_html", "no Content-Type, not HTML"
            return result, None
        result.body = body
        return result, None

    async def _read_body(self, resp, *, limit: int | None = None) -> bytes:
        """The body, decompressed, refusing more than `limit` (max_bytes) before or after
        decompression."""
        limit = limit or self.settings.max_bytes
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decompressor = zlib.decompressobj()
        elif encoding in ("identity", ""):
            decompressor = None
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        out = bytearray()
        received = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"body over {limit} bytes")
            if decompressor is None:
                out += chunk
            else:
                out += decompressor.decompress(chunk, limit + 1 - len(out))
                if decompressor.unconsumed_tail:
                    raise TooLarge(f"decompresses to over {limit} bytes")
            if len(out) > limit:
                raise TooLarge(f"body over {limit} bytes")
        return bytes(out)

    def _host(self, target: URL) -> _Host:
        key = f"{target.host}:{target.port}"
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self.settings.per_host)
            host.delay = self.settings.delay
        return host

    async def _wait_turn(self, host: _Host) -> None:
        if host.delay <= 0:
            return
        async with host.lock:
            now = time.monotonic()
            wait = host.next_at - now
            host.next_at = max(now, host.next_at) + host.delay
        if wait > 0:
            await asyncio.sleep(wait)

    async def _robots_allow(self, target: URL) -> bool:
        origin = f"{target.scheme}://{target.host}:{target.port}"
        future = self._robots.get(origin)
        if future is None:
            future = self._robots[origin] = asyncio.get_running_loop().create_future()
            robots = await self._fetch_robots(target.with_path("/robots.txt").with_query(None))
            future.set_result(robots)
            if isinstance(robots, Protego):
                delay = robots.crawl_delay(self.settings.user_agent)
                if delay:
                    host = self._host(target)
                    host.delay = max(host.delay, float(delay))
        robots = await future
        if isinstance(robots, guard.Refused):
            raise robots  # the host itself is refused: say so, not "disallowed by robots"
        if robots is None:
            return True
        if robots is False:
            return False
        return robots.can_fetch(str(target), self.settings.user_agent)

    async def _fetch_robots(self, url: URL):
        """Parsed robots.txt; None (allow all) when absent; False (disallow all) when the
        server fails (RFC 9309: 5xx or unreachable means disallow). Redirects go through the
        guard like any other."""
        host = self._host(url)
        async with host.semaphore:
            try:
                for _hop in range(5):
                    async with self._session.get(url, allow_redirects=False) as resp:
                        if resp.status in REDIRECTS and "Location" in resp.headers:
                            location = url.join(URL(resp.headers["Location"]))
                            url = guard.check_url(str(location), allowlist=self.settings.allowlist)
                            continue
                        if 400 <= resp.status < 500:
                            return None
                        if resp.status >= 300:
                            return False
                        body = await self._read_body(resp)
                        break
                else:
                    return False
            except guard.Refused as refused:
                return refused
            except aiohttp.ClientError as exc:
                return guard.refusal_of(exc) or False
            except (TimeoutError, TooLarge, zlib.error, ValueError):
                return False
        return Protego.parse(body.decode("utf-8", errors="replace"))


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"))
