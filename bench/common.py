"""Helpers the benchmarks share: processes, ports, scratch databases, Debian tools."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import django
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, *, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not listening on {port} after {timeout}s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen, *, group: bool = False, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    kill = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    with contextlib.suppress(ProcessLookupError):
        kill(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            kill(signal.SIGKILL)
        proc.wait(timeout)


def database_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_recreate(admin_url: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def apt_binary(binary: str, package: str, *, install: bool) -> str | None:
    """The path of a Debian tool, installed with apt-get when missing (as root) if asked."""

    def find() -> str | None:
        return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")

    found = find()
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    log(f"{binary} is missing: apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", "-q", package]
    out = {"stdout": sys.stderr, "stderr": sys.stderr, "env": env}
    if subprocess.run(install_cmd, check=False, **out).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=False, **out)
        subprocess.run(install_cmd, check=False, **out)
    return find()


@contextlib.contextmanager
def bids_database(
    name: str, *, rows: int, reuse: bool, settings_module: str, env: dict[str, str]
) -> Iterator[bool]:
    """Django set up on the migrated bench database `name`, with `env` exported; yields whether
    it already holds `rows` bids (--reuse keeps it between runs, else it is dropped after)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    from project import runtime  # noqa: PLC0415 - the bootstrap exports DATABASE_URL first

    # Benches make their databases as the server's superuser: one role (bench/api.py measures
    # row-level security itself).
    os.environ.setdefault("DATABASE_RLS", "off")
    runtime.bootstrap()
    admin_url = database_url(os.environ["DATABASE_URL"], "postgres")
    bench_url = database_url(os.environ["DATABASE_URL"], name)
    loaded = False
    if reuse:
        try:
            with psycopg.connect(bench_url) as conn:
                loaded = conn.execute("SELECT count(*) FROM crawls_bid").fetchone()[0] == rows
        except psycopg.Error:
            loaded = False
    if not loaded:
        database_recreate(admin_url, name)
    os.environ.update(DATABASE_URL=bench_url, **env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True
    )
    django.setup()
    from project import dbscope  # noqa: PLC0415 - after django.setup()

    dbscope.set_scope(dbscope.SYSTEM)  # a script outside manage.py: maintenance (docs/tenancy.md)
    yield loaded
    if not reuse:
        from django.db import connections  # noqa: PLC0415 - after django.setup()

        connections.close_all()
        database_recreate(admin_url, name, create=False)
