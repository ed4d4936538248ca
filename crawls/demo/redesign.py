"""The demo board's "redesign" (docs/quality.md): POST /_control/redesign {"on": true} serves the
detail pages with new markup, so that the demo rules still find the title but lose the other
fields; the crawl completes and its quality report shows the loss. Setting the epoch ends it."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from crawls.demo.page import Page, page_render
from crawls.demo.serving import BOARD

# The detail page's classes before and after: the meta list's cells and the attachment link.
RENAMED = {
    'class="department"': 'class="agency"',
    'class="reference"': 'class="ref-no"',
    'class="post-date"': 'class="posted"',
    'class="deadline"': 'class="closing"',
    'class="amount"': 'class="budget"',
    'class="views"': 'class="hits"',
    'class="attachment"': 'class="file"',
}


def redesigned(pages: dict[str, Page]) -> dict[str, Page]:
    """The board's pages with every detail page that answers 200 in the new markup (a new ETag
    and a later Last-Modified, so that conditional requests fetch it again)."""
    result = dict(pages)
    for path, page in pages.items():
        if page.kind != "notice" or page.status != 200:
            continue
        text = page.body().decode() if len(page.parts) == 1 else None
        if text is None:  # detail pages have no origin placeholder; leave any other alone
            continue
        for old, new in RENAMED.items():
            text = text.replace(old, new)
        result[path] = page_render(
            text,
            page.kind,
            page.modified + timedelta(hours=1),
            page.content_type,
            status=page.status,
            flaky=page.flaky,
            delay=page.delay,
        )
    return result


async def control_redesign(request: web.Request) -> web.Response:
    """GET: whether the board is redesigned; POST {"on": bool}: redesign it or go back."""
    board = request.app[BOARD]
    if request.method == "POST":
        try:
            data = await request.json()
            on = data["on"]
            if not isinstance(on, bool):
                raise TypeError(on)
        except (ValueError, TypeError, KeyError):
            raise web.HTTPBadRequest(text='Send {"on": true} or {"on": false}\n') from None
        await board.set_redesign(on, redesigned)
    return web.json_response({"on": board.redesigned, "epoch": board.epoch})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/_control/redesign", control_redesign)
    router.add_post("/_control/redesign", control_redesign)
