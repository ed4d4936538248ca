"""The cancel watch of a batch in flight: whether the crawl was cancelled (or its worker is
stopping), read from the database at most every CRAWL_CANCEL_CHECK_SECONDS, off the event loop."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings
from django.db import connection

from crawls.engine import shutdown
from crawls.engine.outage import DATABASE_DOWN
from crawls.models import Crawl


class CancelWatch:
    """Reads the crawl's cancel flag at most every CRAWL_CANCEL_CHECK_SECONDS, off the loop."""

    def __init__(self, crawl_id: int) -> None:
        self.crawl_id = crawl_id
        self.interval = settings.CRAWL_CANCEL_CHECK_SECONDS
        self.next_check = time.monotonic() + self.interval
        self.seen = False

    async def cancelled(self) -> bool:
        """True once the crawl is cancelled, or its worker is stopping (it hands back)."""
        if shutdown.requested():
            return True
        if self.seen or time.monotonic() < self.next_check:
            return self.seen
        self.next_check = time.monotonic() + self.interval
        self.seen = await asyncio.to_thread(_cancel_requested, self.crawl_id)
        return self.seen


def _cancel_requested(crawl_id: int) -> bool:
    try:
        return bool(Crawl.objects.filter(pk=crawl_id, cancel_requested=True).exists())
    except DATABASE_DOWN:
        return False  # the loop meets the outage when it stores the batch
    finally:
        connection.close()  # this thread's connection goes back to the pool
