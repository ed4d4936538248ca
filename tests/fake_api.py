"""A small open-data API of our own for the source tests (a stand-in for a government portal,
which is outside our walls): JSON bids behind a service key, paged, with the portal's error
envelope for a wrong key. Served by aiohttp in a thread on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from aiohttp import web

from tests.processes import free_port

SERVICE_KEY = "k3y+Secret/Value=="  # what a portal hands out: already-encoded look-alikes
ITEMS = [
    {
        "bidNtceNo": f"2026{n:04d}",
        "bidNtceNm": f"Road repair {n}",
        "ntceInsttNm": "Roads office",
        "presmptPrce": str(n * 1000),
        "bidNtceDt": f"2026-03-{n:02d} 09:00:00",
        "bidNtceDtlUrl": f"https://portal.example.org/bids/{n}",
    }
    for n in range(1, 6)
]
PAGE_SIZE = 3

# Rules of kind json for this API (the design document's contract).
JSON_RULES = {
    "request": {
        "method": "GET",
        "query": {
            "serviceKey": "{secret.service_key}",
            "pageNo": "{page}",
            "numOfRows": "{limit}",
            "type": "json",
        },
    },
    "items": "response.body.items.item",
    "key": "bidNtceNo",
    "link": "bidNtceDtlUrl",
    "fields": {
        "title": "bidNtceNm",
        "department": "ntceInsttNm",
        "amount": {"path": "presmptPrce", "type": "decimal"},
        "post_date": {"path": "bidNtceDt", "type": "date", "formats": ["%Y-%m-%d %H:%M:%S"]},
    },
    "pagination": {
        "style": "page", "start": 1, "size": PAGE_SIZE, "total": "response.body.totalCount",
    },
    "error": {
        "when": "response.header.resultCode", "ok": ["00"], "message": "response.header.resultMsg",
    },
}  # fmt: skip


async def _bids(request: web.Request) -> web.Response:
    if request.query.get("serviceKey") != SERVICE_KEY:
        header = {"resultCode": "30", "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR."}
        return web.json_response({"response": {"header": header}})
    page = int(request.query.get("pageNo", "1"))
    size = int(request.query.get("numOfRows", str(PAGE_SIZE)))
    items = ITEMS[(page - 1) * size : page * size]
    body = {"items": {"item": items}, "totalCount": len(ITEMS), "pageNo": page}
    header = {"resultCode": "00", "resultMsg": "NORMAL SERVICE."}
    return web.json_response({"response": {"header": header, "body": body}})


async def _robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nAllow: /\n")


def start() -> SimpleNamespace:
    """Serve the API; returns (base_url, address, stop)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/bids", _bids)
        app.router.add_get("/robots.txt", _robots)
        runner = web.AppRunner(app, access_log=None)  # its URLs hold the key
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        holder["runner"] = runner
        ready.set()

    thread = threading.Thread(target=loop.run_forever, name="fake-api", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    if not ready.wait(30):
        raise RuntimeError("the fake API did not start")

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)

    address = f"127.0.0.1:{port}"
    return SimpleNamespace(base_url=f"http://{address}", address=address, stop=stop)
