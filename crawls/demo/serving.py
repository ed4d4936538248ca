"""What the demo board's handlers share: one server's Board (its epoch and pages), the request's
origin, and conditional GET."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web

from crawls.demo.data import MAX_EPOCH, BoardConfig
from crawls.demo.page import Page
from crawls.demo.site import render_site

_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


class Board:
    """One server's board: the current epoch, its pages, the flaky pages that already failed."""

    def __init__(self, config: BoardConfig):
        self.config = config
        self.epoch = 0
        self.pages: dict[str, Page] = render_site(config, 0)
        self.failed_once: set[str] = set()
        self.hidden: frozenset[int] = frozenset()  # notices taken down (crawls.demo.takedown)
        self.redesigned = False  # crawls.demo.redesign: the detail pages' new markup
        self._transform: Callable[[dict[str, Page]], Any] | None = None
        self._switching = asyncio.Lock()

    async def set_epoch(self, epoch: int) -> None:
        if not 0 <= epoch <= MAX_EPOCH:
            raise ValueError(f"epoch must be between 0 and {MAX_EPOCH}")
        async with self._switching:
            if epoch != self.epoch or self.hidden or self.redesigned:
                # Setting the epoch ends a takedown and a redesign. Rendering a big board takes a
                # while: keep serving the current epoch meanwhile.
                pages = await asyncio.to_thread(render_site, self.config, epoch)
                self.pages, self.epoch = pages, epoch
                self.hidden, self.redesigned, self._transform = frozenset(), False, None

    async def take_down(self, ids: frozenset[int]) -> None:
        """Show the current epoch without the notices `ids` (until the epoch is set again)."""
        async with self._switching:
            if ids != self.hidden:
                self.hidden = ids
                await self._rerender()

    async def set_redesign(self, on: bool, transform: Callable[[dict[str, Page]], Any]) -> None:
        """Serve the epoch's pages through `transform` (crawls.demo.redesign), or as they are."""
        async with self._switching:
            if on != self.redesigned:
                self.redesigned, self._transform = on, (transform if on else None)
                await self._rerender()

    async def _rerender(self) -> None:
        """The current epoch's pages, without the hidden notices, redesigned when it is on."""
        render = functools.partial(render_site, self.config, self.epoch, hidden=self.hidden)
        pages = await asyncio.to_thread(render)
        self.pages = self._transform(pages) if self._transform is not None else pages

    def fail_once(self, key: str) -> bool:
        """True the first time `key` (a flaky page) is asked for on this server."""
        if key in self.failed_once:
            return False
        self.failed_once.add(key)
        return True


BOARD = web.AppKey("board", Board)


def origin(request: web.Request) -> str:
    host = request.host
    if not _HOST.match(host):
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        host = f"{sockname[0]}:{sockname[1]}" if sockname else "localhost"
    return f"{request.scheme}://{host}"


def not_modified(request: web.Request, etag: str, modified: datetime) -> bool:
    # If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and modified <= since
    return False
