"""Which exceptions mean that PostgreSQL or Redis is unreachable (an outage: 503, not 500)."""

from __future__ import annotations

import psycopg
import psycopg_pool
import redis
from django.db import utils as db_utils

DATABASE_ERRORS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,  # (an OperationalError too; named for the reader)
    db_utils.OperationalError,
    db_utils.InterfaceError,
)
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def outage_part(exc: BaseException | None) -> str | None:
    """ "database" or "redis" when `exc` (or an exception it was raised from) says that server
    is unreachable; None for anything else."""
    seen = 0
    while exc is not None and seen < 10:  # a chain of causes, bounded
        if isinstance(exc, DATABASE_ERRORS):
            return "database"
        if isinstance(exc, REDIS_ERRORS):
            return "redis"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
