"""Waiting out a database outage inside a crawl's task, instead of failing the crawl or leaving
it to the sweep."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection

from project.outage import DATABASE_ERRORS

logger = logging.getLogger(__name__)

OUTAGE_MAX_BACKOFF = 5.0  # seconds between looks at a database that is down

# PostgreSQL cannot be reached (stopped, restarting, failing over, a connection cut): retried.
DATABASE_DOWN = DATABASE_ERRORS  # the errors the web answers 503 for (project/outage.py)


class Outage:
    """Waits out a database outage inside the crawl's task, with backoff, for at most
    CRAWL_OUTAGE_SECONDS in all; then the error goes up and the sweep takes over later.

    An error that persists while the database answers (a statement that keeps failing) is not
    an outage: after MAX_FAILURES_WHILE_UP of them in a row it goes up at once.
    """

    MAX_FAILURES_WHILE_UP = 5

    def __init__(self, crawl_id: int) -> None:
        self.crawl_id = crawl_id
        self.deadline: float | None = None
        self.failures_while_up = 0
        self.waited = False

    def wait(self, error: Exception) -> None:
        logger.warning("crawl %s: the database is unavailable (%s); waiting", self.crawl_id, error)
        if self.deadline is None:
            self.deadline = time.monotonic() + settings.CRAWL_OUTAGE_SECONDS
        delay, probes = 0.25, 0
        while True:
            probes += 1
            connection.close()  # a broken one goes back to the pool, which replaces it
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except DATABASE_DOWN:
                if time.monotonic() > self.deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, OUTAGE_MAX_BACKOFF)
                continue
            if probes == 1:
                self.failures_while_up += 1
                if self.failures_while_up >= self.MAX_FAILURES_WHILE_UP:
                    raise error
            logger.warning("crawl %s: the database answers; resuming", self.crawl_id)
            self.waited = True
            return

    def recovered(self) -> None:
        """A step went through: the next outage gets a budget of its own."""
        self.deadline = None
        self.failures_while_up = 0

    def ended(self) -> bool:
        """True once after each outage this run waited out."""
        waited, self.waited = self.waited, False
        return waited
