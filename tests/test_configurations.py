"""Forest starts from any valid PostgreSQL URL, not only the embedded default's unix socket.

The many-machine shape (docker-compose.yml) gives every container a URL such as
postgresql://forest:secret@postgres:5432/forest: no query string, TCP, a password.
"""

import json
import re
import secrets

import psycopg
import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from crawls.demo.board import DEMO_RULES, expected_bids
from project.settings import database_config
from tests.pgserver import TcpPostgres
from tests.processes import (
    BASE_DIR,
    Program,
    free_port,
    http_get,
    program_env,
    python,
    start_daphne,
)
from tests.test_settings import IMPORT_SETTINGS, run


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://forest:s3cret@postgres:5432/forest",
            {"HOST": "postgres", "PORT": 5432, "USER": "forest", "PASSWORD": "s3cret"},
        ),
        ("postgres://forest@db.example.org/forest", {"HOST": "db.example.org", "PORT": ""}),
        ("postgresql://u:p%40ss%2Fw@h:6543/forest", {"PASSWORD": "p@ss/w", "PORT": 6543}),
        ("postgresql://u@[::1]:5433/forest", {"HOST": "::1", "PORT": 5433}),
        ("postgresql://postgres@/forest?host=/var/run/postgresql", {"HOST": ""}),
        ("postgresql://%2Fvar%2Frun%2Fpostgresql/forest", {"HOST": "/var/run/postgresql"}),
        ("postgresql:///forest", {"HOST": "", "USER": ""}),
        (
            "postgres://u@h:5432/forest?sslmode=require&connect_timeout=3",
            {"HOST": "h", "PORT": 5432},
        ),
    ],
)
def test_database_config_reads_every_postgresql_url_form(url, expected):
    config = database_config(url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "forest"
    for key, value in expected.items():
        assert config[key] == value, key
    assert config["OPTIONS"]["pool"]["max_size"] >= 1
    assert config["OPTIONS"]["connect_timeout"] >= 1
    if "?host=" in url:
        assert config["OPTIONS"]["host"] == "/var/run/postgresql"


def test_database_config_keeps_options_given_in_the_url():
    options = database_config("postgres://u@h/forest?sslmode=require&connect_timeout=3")["OPTIONS"]
    assert options["sslmode"] == "require"
    assert options["connect_timeout"] == 3


def test_database_config_refuses_other_engines():
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL"):
        database_config("mysql://u:p@h/forest")


README_FORMS = sorted(
    set(re.findall(r"`(postgres(?:ql)?://[^`]+)`", (BASE_DIR / "README.md").read_text()))
)


@pytest.mark.parametrize("url", README_FORMS)
def test_settings_import_with_each_url_form_the_readme_names(url):
    assert README_FORMS, "README names no DATABASE_URL form"
    env = program_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="project.settings")
    result = run(python("-c", IMPORT_SETTINGS), env)
    assert result.returncode == 0, result.stderr


def _compose_value(name: str) -> str:
    """The value docker-compose.yml gives every Forest container for `name`."""
    compose = (BASE_DIR / "docker-compose.yml").read_text()
    return re.search(rf"^\s+{name}: (.+)$", compose, re.MULTILINE).group(1).strip()


def _as_compose_writes_it(template: str, host: str, port: int, **variables: str) -> str:
    """A compose URL with its ${VARIABLES} filled in and its service's host:port pointed here."""
    url = re.sub(r"\$\{(\w+)[^}]*\}", lambda m: variables[m.group(1)], template)
    return re.sub(r"(?<=[@/])[\w.-]+:\d+(?=/)", f"{host}:{port}", url)


@pytest.fixture(scope="module")
def tcp_postgres(tmp_path_factory):
    server = TcpPostgres(tmp_path_factory.mktemp("tcp-postgres"), port=free_port()).init()
    yield server
    server.stop()


@pytest.mark.slow
def test_compose_shape_boots_migrate_web_and_worker_over_tcp(
    tcp_postgres, settings, tmp_path, demo_board
):
    database_url = _as_compose_writes_it(
        _compose_value("DATABASE_URL"), "127.0.0.1", tcp_postgres.port,
        POSTGRES_APP_PASSWORD=f"{tcp_postgres.password}-app",
    )  # fmt: skip
    assert database_url == tcp_postgres.app_url
    owner_url = _as_compose_writes_it(
        _compose_value("DATABASE_OWNER_URL"), "127.0.0.1", tcp_postgres.port,
        POSTGRES_PASSWORD=tcp_postgres.password,
    )  # fmt: skip
    assert owner_url == tcp_postgres.url
    redis_host, redis_port = re.search(r"//([^:/]+):(\d+)/", settings.REDIS_URL).groups()
    # Its own Redis database, so that the session's worker never takes this worker's tasks.
    redis_url = (
        _as_compose_writes_it(_compose_value("REDIS_URL"), redis_host, int(redis_port)).rsplit(
            "/", 1
        )[0]
        + "/12"
    )
    env = program_env(
        DATABASE_URL=database_url,
        DATABASE_OWNER_URL=owner_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SUPERUSER_PASSWORD="compose-admin-42",
        # As compose sets it when the environment does not (its default), not this session's.
        DATABASE_RLS=re.fullmatch(r"\$\{DATABASE_RLS:-(\w+)\}", _compose_value("DATABASE_RLS"))[1],
    )
    env.pop("CELERY_BROKER_URL", None)
    migrate = run(python("manage.py", "migrate", "--noinput"), env, timeout=300)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert run(python("manage.py", "ensure_admin"), env).returncode == 0

    web = start_daphne(env, tmp_path / "web.log")
    worker = Program(
        python(
            "-m", "celery", "-A", "project", "--quiet", "worker", "-l", "INFO", "-n", "compose@%h"
        ),
        env=env,
        log=tmp_path / "worker.log",
    )
    try:
        ready = f"{web.base_url}/readyz"
        worker.wait_until(lambda: http_get(ready)[0] == 200, what="ready", timeout=90)
        rules = tmp_path / "rules.json"
        rules.write_text(json.dumps(DEMO_RULES))
        start = f"{demo_board.base_url}/notices/page/2"
        crawl = run(
            python("manage.py", "crawl", "--url", start, "--rules", str(rules), "--wait"),
            env,
            timeout=180,
        )
        assert crawl.returncode == 0, crawl.stdout + crawl.stderr
        with psycopg.connect(database_url) as conn:
            # Row-level security: a connection that takes no scope sees no row.
            assert conn.execute("SELECT count(*) FROM crawls_bid").fetchone()[0] == 0
            conn.execute("SELECT set_config('forest.workspace_ids', '*', false)")
            stored = conn.execute("SELECT count(*) FROM crawls_bid").fetchone()[0]
        assert stored == len(expected_bids(demo_board.config, base_url=demo_board.base_url))
    finally:
        worker.stop()
        web.stop()


# --- Imports under docker compose ---------------------------------------------------------------


def test_compose_web_and_worker_share_the_import_dir():
    """Uploads the web process keeps for a worker (docs/imports.md) are on one named volume
    mounted in both, at the IMPORT_DIR every Forest container is given."""
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    import_dir = services["web"]["environment"]["IMPORT_DIR"]
    assert services["worker"]["environment"]["IMPORT_DIR"] == import_dir
    mounts = {
        name: {tuple(volume.split(":")[:2]) for volume in services[name].get("volumes", [])}
        for name in ("web", "worker")
    }
    shared = mounts["web"] & mounts["worker"]
    volumes = {source for source, target in shared if target == import_dir}
    assert volumes, f"web and worker share no volume at IMPORT_DIR {import_dir}: {mounts}"
    assert volumes <= set(compose["volumes"]), "IMPORT_DIR's volume is a named volume"
    # The image's user owns that directory: a new named volume starts with its owner.
    assert "mkdir -p /app/var/imports" in (BASE_DIR / "Dockerfile").read_text()
    assert import_dir == "/app/var/imports"
