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
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


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
