"""The demo board's takedown control: notices the publisher took down, for the tests of removed
notices (crawls.engine.presence). POST /_control/takedown {"ids": [notice ids]} hides exactly
those notices of the current epoch: they leave the listing and the sitemap and their pages
answer 404; {"ids": []} shows them again, and so does setting the epoch. GET tells which.
"""

from __future__ import annotations

from aiohttp import web

from crawls.demo.serving import BOARD

MAX_IDS = 10_000


async def _control_takedown(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    if request.method == "POST":
        try:
            data = await request.json()
            ids = data["ids"]
            if not isinstance(ids, list) or len(ids) > MAX_IDS:
                raise TypeError(ids)
            if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
                raise TypeError(ids)
        except (ValueError, TypeError, KeyError):
            raise web.HTTPBadRequest(
                text=f'Send {{"ids": [notice ids]}} (at most {MAX_IDS})\n'
            ) from None
        await board.take_down(frozenset(ids))
    return web.json_response({"epoch": board.epoch, "ids": sorted(board.hidden)})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/_control/takedown", _control_takedown)
    router.add_post("/_control/takedown", _control_takedown)
