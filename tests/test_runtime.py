"""The embedded-services bootstrap starts real servers once, reuses them and stops them cleanly."""

import os
import signal

import psycopg
import pytest
import redis

from project import runtime


@pytest.fixture
def var(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREST_VAR_DIR", str(tmp_path))
    return tmp_path


def test_redis_starts_once_is_reused_and_stops(var):
    try:
        assert runtime.redis_start(var) is True
        assert runtime.redis_start(var) is False  # already up: reused, not started twice
        client = redis.Redis.from_url(runtime.redis_url(var))
        assert client.ping() is True
        client.close()
    finally:
        runtime.redis_stop(var)
    assert runtime.redis_running(var) is False
    assert runtime.status(var)["redis"] is False


def test_redis_killed_comes_back_on_the_address_it_had(var):
    """Running processes keep REDIS_URL: a restarted embedded Redis must be found there."""
    try:
        runtime.redis_start(var)
        url = runtime.redis_url(var)
        client = redis.Redis.from_url(url)
        pid = int((var / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        runtime._wait_for(lambda: not runtime.redis_running(var), what="redis to die")
        with pytest.raises(redis.ConnectionError):
            client.ping()  # as a running process would, the client notices and lets go
        assert runtime.redis_start(var) is True
        assert runtime.redis_url(var) == url
        assert client.ping() is True  # the same client reconnects to the same address
        client.close()
    finally:
        runtime.redis_stop(var)


def test_postgres_starts_once_is_reused_and_stops(var):
    try:
        assert runtime.postgres_start(var) is True
        assert runtime.postgres_start(var) is False
        with psycopg.connect(runtime.postgres_url(var)) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()[0]
        assert int(version) >= 150000
    finally:
        runtime.postgres_stop(var)
    assert runtime.postgres_running(var) is False


def test_bootstrap_starts_nothing_when_urls_are_set(var, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/forest")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("SECRET_KEY", "k" * 50)
    result = runtime.bootstrap(stop_at_exit=False)
    assert result.started == []
    assert result.env == {}
    assert list(var.iterdir()) == []


def test_bootstrap_exports_urls_and_stops_only_what_it_started(var, monkeypatch):
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_RLS", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    runtime.redis_start(var)  # someone else's server: bootstrap must reuse and leave it
    try:
        result = runtime.bootstrap(stop_at_exit=False)
        assert result.started == ["postgres"]
        # Row-level security by default: the application's role, and the owner for migrations.
        assert result.env["DATABASE_URL"] == runtime.postgres_url(var, role=runtime.APP_ROLE)
        assert result.env["DATABASE_OWNER_URL"] == runtime.postgres_url(var)
        assert result.env["REDIS_URL"] == runtime.redis_url(var)
        assert len(result.env["SECRET_KEY"]) >= 50
        assert (var / "secret_key").stat().st_mode & 0o077 == 0  # readable by the owner only
        result.stop()
        assert runtime.status(var) == {"postgres": False, "redis": True}
        for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "SECRET_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("DATABASE_RLS", "off")
        again = runtime.bootstrap(stop_at_exit=False)
        assert again.env["DATABASE_URL"] == runtime.postgres_url(var)  # one role: the owner
        assert "DATABASE_OWNER_URL" not in again.env
        assert again.env["SECRET_KEY"] == result.env["SECRET_KEY"]  # kept across runs
        again.stop()
    finally:
        runtime.redis_stop(var)
        runtime.postgres_stop(var)


def test_bootstrap_grants_an_older_database_to_the_application_role(var, monkeypatch):
    """A database whose tables were made by the owner alone (DATABASE_RLS off, or an install
    from before the application's role) is readable by that role once bootstrap turns RLS on,
    before any `migrate` grants it."""
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_RLS", "off")
    runtime.redis_start(var)
    try:
        runtime.bootstrap(stop_at_exit=False)
        with psycopg.connect(runtime.postgres_url(var), autocommit=True) as owner:
            owner.execute("CREATE TABLE django_migrations (id serial PRIMARY KEY, app text)")
            owner.execute("INSERT INTO django_migrations (app) VALUES ('crawls')")
        app_url = runtime.postgres_url(var, role=runtime.APP_ROLE)
        with psycopg.connect(app_url) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT app FROM django_migrations")
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("DATABASE_RLS", "on")
        runtime.bootstrap(stop_at_exit=False)
        with psycopg.connect(app_url) as app:
            assert app.execute("SELECT app FROM django_migrations").fetchall() == [("crawls",)]
            app.execute("INSERT INTO django_migrations (app) VALUES ('notifications')")  # sequence
    finally:
        runtime.redis_stop(var)
        runtime.postgres_stop(var)
