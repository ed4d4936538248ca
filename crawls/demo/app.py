"""The demo board over HTTP (aiohttp.web), and its export as static files.

Pages come pre-rendered from crawls.demo.data, so serving one is a dict lookup plus conditional
GET. Besides the board: /_control/epoch (switch epochs for re-crawl tests),
/_control/takedown (crawls.demo.takedown), the JSON API, XML service, OCDS feed and eGov board
(crawls.demo.routes) and, when the config asks for them, the /hostile/ endpoints that the
crawler's security tests aim at.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from functools import cache
from pathlib import Path

from aiohttp import web

from crawls.demo import redesign, routes, takedown
from crawls.demo.data import BoardConfig
from crawls.demo.serving import BOARD, Board, not_modified, origin
from crawls.demo.site import PDF_BYTES, render_site

__all__ = ["BOARD", "Board", "export_static", "gzip_bomb", "make_app", "start_board"]

HOSTILE_SECONDS = 60
HUGE_BYTES = 50 * 1024 * 1024
BOMB_BYTES = 200 * 1024 * 1024


async def _serve(request: web.Request) -> web.StreamResponse:
    board = request.app[BOARD]
    path = request.path
    page = board.pages.get(path)
    if page is None:
        if path == "/":
            return web.Response(status=302, headers={"Location": "/notices"})
        return web.Response(status=404, text="Not found\n")
    if page.delay:
        await asyncio.sleep(page.delay)
    if page.flaky and path not in board.failed_once:
        board.failed_once.add(path)
        return web.Response(status=500, text="Temporary failure, try again\n")
    if page.status != 200:
        return web.Response(
            status=page.status, body=page.body(), headers={"Content-Type": page.content_type}
        )
    if not_modified(request, page.etag, page.modified):
        return web.Response(
            status=304, headers={"ETag": page.etag, "Last-Modified": page.last_modified}
        )
    return web.Response(
        body=page.body(origin(request)) if len(page.parts) > 1 else page.parts[0],
        headers={
            "Content-Type": page.content_type,
            "ETag": page.etag,
            "Last-Modified": page.last_modified,
        },
    )


async def _control_epoch(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    value = request.query.get("set")
    if request.method == "POST":
        try:
            data = await request.json()
            value = data["epoch"]
        except (ValueError, TypeError, KeyError):
            raise web.HTTPBadRequest(text='Send {"epoch": n}\n') from None
    if value is not None:
        try:
            if isinstance(value, bool):
                raise TypeError(value)
            await board.set_epoch(int(value))
        except (ValueError, TypeError) as error:
            raise web.HTTPBadRequest(text=f"Bad epoch: {error}\n") from None
    return web.json_response({"epoch": board.epoch})


# --- /hostile/ ------------------------------------------------------------------------------------

_HOSTILE_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Hostile endpoints</title></head><body>
<h1>Hostile endpoints</h1><ul>
<li><a href="/hostile/redirect?to=http://169.254.169.254/latest/meta-data/">open redirect</a></li>
<li><a href="/hostile/loop">redirect loop</a></li>
<li><a href="/hostile/chain/20">redirect chain</a></li>
<li><a href="/hostile/gzip-bomb">gzip bomb</a></li>
<li><a href="/hostile/huge">50 MB page</a></li>
<li><a href="/hostile/slow-headers">slow headers</a></li>
<li><a href="/hostile/slow-body">slow body</a></li>
<li><a href="/hostile/pdf">PDF</a></li>
<li><a href="/hostile/no-type">no Content-Type</a></li>
<li><a href="/hostile/rules/">pages for hostile rules</a></li>
</ul></body></html>
"""
# Pages that hostile rules stall on (tests/test_hostile_rules.py): a long run of "a"s for
# `(a+)+$`, a deeply nested page for descendant-combinator CSS, and one ordinary notice.
BACKTRACK_RUN = 30_000
DEEP_NESTING = 1_000
_RULES_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Pages for hostile rules</title></head><body>
<ul class="notices">
<li><a href="/hostile/rules/plain">An ordinary notice</a></li>
<li><a href="/hostile/rules/backtrack">A long run of a</a></li>
<li><a href="/hostile/rules/deep">A deeply nested page</a></li>
</ul></body></html>
"""


def _rules_page(name: str) -> str:
    title = f'<h1 class="notice-title">Hostile page: {name}</h1>'
    if name == "backtrack":
        body = f'<table><tr><td class="amount">{"a" * BACKTRACK_RUN}!</td></tr></table>'
    elif name == "deep":
        body = "<div>" * DEEP_NESTING + '<span class="amount">1</span>' + "</div>" * DEEP_NESTING
    else:
        body = '<table><tr><td class="amount">1,500 won</td></tr></table>'
    return f'<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"></head><body>{title}{body}'


@cache
def gzip_bomb() -> bytes:
    """A gzip member of about 200 KB that inflates to BOMB_BYTES of zeros.

    Compressing 200 MB would take seconds; after a full flush the compressor starts afresh, so
    the deflate blocks of one MiB of zeros repeat byte for byte and can simply be concatenated.
    """
    chunk = bytes(1 << 20)
    count = BOMB_BYTES // len(chunk)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, BOMB_BYTES & 0xFFFFFFFF)
    return header + block * count + compressor.flush() + trailer


async def _hostile_index(request: web.Request) -> web.Response:
    return web.Response(text=_HOSTILE_INDEX, content_type="text/html")


async def _rules_index(request: web.Request) -> web.Response:
    return web.Response(text=_RULES_INDEX, content_type="text/html")


async def _rules(request: web.Request) -> web.Response:
    return web.Response(text=_rules_page(request.match_info["name"]), content_type="text/html")


async def _redirect(request: web.Request) -> web.Response:
    target = request.query.get("to", "")
    if not target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        raise web.HTTPBadRequest(text="Give ?to=<url>\n")
    return web.Response(status=302, headers={"Location": target})


async def _loop(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/hostile/loop"})


async def _chain(request: web.Request) -> web.Response:
    remaining = int(request.match_info["n"])
    if remaining > 0:
        return web.Response(status=302, headers={"Location": f"/hostile/chain/{remaining - 1}"})
    return web.Response(
        text='<!DOCTYPE html><html><body><h1 class="notice-title">End of the chain</h1>'
        "</body></html>\n",
        content_type="text/html",
    )


async def _gzip_bomb(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(gzip_bomb)
    return web.Response(
        body=body,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
    )


async def _huge(request: web.Request) -> web.StreamResponse:
    """HUGE_BYTES of HTML, chunked (?declare=1: with a Content-Length announcing them)."""
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    if request.query.get("declare"):
        response.content_length = HUGE_BYTES
    await response.prepare(request)
    head = b"<!DOCTYPE html><html><body>\n"
    filler = b"<p>" + b"A" * 1017 + b"</p>\n"  # 1 KiB
    chunk = filler * 64
    sent = len(head)
    await response.write(head)
    while sent + len(chunk) <= HUGE_BYTES:
        await response.write(chunk)
        sent += len(chunk)
    await response.write(b" " * (HUGE_BYTES - sent))
    await response.write_eof()
    return response


async def _slow_headers(request: web.Request) -> web.Response:
    await asyncio.sleep(HOSTILE_SECONDS)
    return web.Response(text="<p>finally</p>\n", content_type="text/html")


async def _slow_body(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte a second for HOSTILE_SECONDS."""
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    response.content_length = HOSTILE_SECONDS
    await response.prepare(request)
    for second in range(HOSTILE_SECONDS):
        if second:
            await asyncio.sleep(1)
        await response.write(b"<" if second == 0 else b".")
    await response.write_eof()
    return response


async def _pdf(request: web.Request) -> web.Response:
    return web.Response(body=PDF_BYTES, content_type="application/pdf")


async def _no_type(request: web.Request) -> web.Response:
    return web.Response(body=b"<!DOCTYPE html><html><body><p>What am I?</p></body></html>\n")


async def _strip_content_type(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp adds a Content-Type to every body; this hook runs after that, before sending.
    if request.path == "/hostile/no-type":
        response.headers.popall("Content-Type", None)


def make_app(config: BoardConfig) -> web.Application:
    """The board's aiohttp application (pages of epoch 0 rendered before it returns)."""
    app = web.Application()
    app[BOARD] = Board(config)
    router = app.router
    router.add_get("/_control/epoch", _control_epoch)
    router.add_post("/_control/epoch", _control_epoch)
    takedown.add_routes(router)
    redesign.add_routes(router)
    if config.hostile:
        router.add_get("/hostile/", _hostile_index)
        router.add_get("/hostile/redirect", _redirect)
        router.add_get("/hostile/loop", _loop)
        router.add_get(r"/hostile/chain/{n:\d{1,6}}", _chain)
        router.add_get("/hostile/gzip-bomb", _gzip_bomb)
        router.add_get("/hostile/huge", _huge)
        router.add_get("/hostile/slow-headers", _slow_headers)
        router.add_get("/hostile/slow-body", _slow_body)
        router.add_get("/hostile/pdf", _pdf)
        router.add_get("/hostile/no-type", _no_type)
        router.add_get("/hostile/rules/", _rules_index)
        router.add_get("/hostile/rules/{name:plain|backtrack|deep}", _rules)
        app.on_response_prepare.append(_strip_content_type)
    routes.add_routes(router)
    router.add_get("/{path:.*}", _serve)
    return app


async def start_board(
    config: BoardConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve the board on host:port (0: any free port); returns the runner and the bound port.

    Stop it with `await runner.cleanup()`.
    """
    runner = web.AppRunner(
        make_app(config),
        access_log=None,
        # A client that gives up on a slow hostile endpoint ends its handler, and stopping
        # does not wait a minute for the ones still running.
        handler_cancellation=True,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def export_static(
    config: BoardConfig, directory: Path, *, origin: str | None = None, epoch: int = 0
) -> int:
    """Write robots.txt, sitemap.xml and every listing, detail and private page that answers 200
    as files at their URL paths (notices/page/2, notices/123: no extension); returns how many.

    Links are absolute paths; robots.txt and the sitemap use `origin` (scheme://host) when given.
    Listing page 1 is only at notices/page/1, notices being a directory.
    """
    directory = Path(directory)
    count = 0
    for path, page in render_site(config, epoch, static=True, origin=origin).items():
        if page.kind == "file" or page.status != 200:
            continue
        target = directory / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.body())
        count += 1
    return count
