"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler, made to outlive the database.

django-celery-beat 2.9.0 catches database errors where it checks for schedule changes and saves
run counts, but not where it (re)reads the whole schedule: at start-up, and on the full re-read
it forces every 5 minutes. A PostgreSQL outage that covers either makes beat exit 1. This
subclass keeps beat up through outages of any length: it logs, retries with a capped
exponential backoff (BEAT_DB_RETRY_MAX_SECONDS), and re-reads the whole schedule as soon as the
database answers again. BEAT_FULL_SYNC_SECONDS can make that periodic full re-read more frequent
(django-celery-beat's own period, 300 s, is the most it can be).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections
from django_celery_beat import schedulers

logger = logging.getLogger(__name__)

DB_ERRORS = (DatabaseError, InterfaceError)
FIRST_RETRY_SECONDS = 1.0
# The parent keeps _last_full_sync as a naive local time; "long ago" makes it re-read everything.
LONG_AGO = dt.datetime.min  # noqa: DTZ901


class DatabaseScheduler(schedulers.DatabaseScheduler):
    _db_failures = 0

    @property
    def schedule(self) -> dict:
        last = self._last_full_sync
        age = dt.datetime.now() - last if last is not None else dt.timedelta(0)  # noqa: DTZ005
        if age.total_seconds() >= settings.BEAT_FULL_SYNC_SECONDS:
            self._last_full_sync = LONG_AGO
        return super().schedule

    def setup_schedule(self) -> None:
        # Runs once, in the constructor: wait for the database rather than exit.
        while True:
            try:
                super().setup_schedule()
            except DB_ERRORS as exc:
                delay = self._db_unavailable(exc)
                self._initial_read = True  # read everything again on the next attempt
                time.sleep(delay)
            else:
                self._db_recovered()
                return

    def tick(self, *args, **kwargs) -> float:
        try:
            interval = super().tick(*args, **kwargs)
        except DB_ERRORS as exc:
            # Re-read the whole schedule on the next tick, whatever went wrong mid-way.
            self._last_full_sync = LONG_AGO
            return self._db_unavailable(exc)
        self._db_recovered()
        return interval

    def _db_unavailable(self, exc: Exception) -> float:
        self._db_failures += 1
        delay = min(
            FIRST_RETRY_SECONDS * 2 ** (self._db_failures - 1), settings.BEAT_DB_RETRY_MAX_SECONDS
        )
        logger.warning(
            "beat: database unavailable (%s: %s); attempt %d, next in %.0fs",
            type(exc).__name__, exc, self._db_failures, delay,
        )  # fmt: skip
        # Broken connections must not be reused; the next query opens a fresh one.
        connections.close_all()
        return delay

    def _db_recovered(self) -> None:
        if self._db_failures:
            logger.info("beat: database back after %d failed attempts", self._db_failures)
            self._db_failures = 0
