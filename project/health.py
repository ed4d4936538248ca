"""Liveness and readiness probes.

/healthz answers as long as the process serves HTTP. /readyz checks every part a request or a
crawl needs — PostgreSQL, Redis, the Celery broker and at least one worker — and answers 503
naming the parts that failed.
"""

from __future__ import annotations

import time

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from project.celery import app as celery_app

PROBE_TIMEOUT = 1.0  # seconds, per part


def _check_postgres() -> None:
    # A direct connection with a short timeout: waiting on the request pool would take its
    # full timeout when the server is gone.
    params = {**connection.get_connection_params(), "connect_timeout": max(1, round(PROBE_TIMEOUT))}
    with psycopg.connect(**params) as conn:
        conn.execute("SELECT 1")


def _check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker() -> Connection:
    return Connection(settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT)


def _check_broker() -> None:
    with _broker() as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)


def _check_worker() -> None:
    with _broker() as conn:
        replies = celery_app.control.ping(timeout=PROBE_TIMEOUT, limit=1, connection=conn)
    if not replies:
        raise RuntimeError(f"no Celery worker answered within {PROBE_TIMEOUT:g}s")


CHECKS = {
    "postgres": _check_postgres,
    "redis": _check_redis,
    "broker": _check_broker,
    "worker": _check_worker,
}


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    checks: dict[str, dict] = {}
    for name, check in CHECKS.items():
        if name == "worker" and not checks["broker"]["ok"]:
            checks[name] = {"ok": False, "error": "not checked: the broker is unreachable", "ms": 0}
            continue
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            checks[name] = {"ok": True}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
