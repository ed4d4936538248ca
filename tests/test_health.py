"""/healthz and /readyz against the real PostgreSQL, Redis, broker and a real worker."""

import json

import pytest

from tests.processes import (
    Program,
    database_url,
    free_port,
    http_get,
    http_status,
    program_env,
    python,
)


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: pytest-django makes any database access in this test an error.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_every_part_answers(client, celery_worker):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"postgres", "redis", "broker", "worker"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down(client, settings, celery_worker):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert "Connection" in body["checks"]["redis"]["error"]


@pytest.mark.django_db
def test_readyz_names_broker_and_worker_when_the_broker_is_down(client, settings, celery_worker):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker", "worker"]
    assert body["checks"]["worker"]["error"] == "not checked: the broker is unreachable"


@pytest.mark.django_db
def test_readyz_names_the_worker_when_none_listens(client, settings, celery_worker):
    # The same Redis server, another database: reachable, but no worker consumes from it.
    settings.CELERY_BROKER_URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert "no Celery worker answered" in body["checks"]["worker"]["error"]


def test_readyz_names_postgres_when_the_database_is_unreachable(django_db_setup, tmp_path):
    """A server whose database is gone stays alive (/healthz) but is not ready (/readyz)."""
    port = free_port()
    server = Program(
        python("-m", "daphne", "-v", "0", "-p", str(port), "project.asgi:application"),
        env=program_env(DATABASE_URL=database_url("forest_no_such_database")),
        log=tmp_path / "daphne.log",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        server.wait_until(lambda: http_status(f"{base}/healthz") == 200, what="daphne")
        status, raw = http_get(f"{base}/readyz")
        assert status == 503
        body = json.loads(raw)
        assert "postgres" in body["failing"]
        assert "forest_no_such_database" in body["checks"]["postgres"]["error"]
    finally:
        server.stop()
