"""`manage.py run` (what `make run` calls): Forest on one machine, in the foreground."""

import io
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import TextIO

import environ
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from honcho.manager import Manager

from crawls import selectors, services
from project import dbscope, logs, serving, staticfiles
from project.celery import app as celery_app


class Command(BaseCommand):
    help = (
        "Migrate, create an admin when there is none, then run nginx on the one port in front of "
        "gunicorn (pages, API) and daphne (WebSocket, SSE), a Celery worker and Celery beat with "
        "prefixed logs. Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        env = environ.Env()
        parser.add_argument("--host", default=env.str("HOST", default="127.0.0.1"))
        parser.add_argument("--port", type=int, default=env.int("PORT", default=8000))
        parser.add_argument(
            "--concurrency", type=int, default=env.int("WORKER_CONCURRENCY", default=2)
        )

    def handle(self, *args, host, port, concurrency, **options):
        # The children write into honcho's pipes: they log as our own stdout wants it.
        os.environ["LOG_FORMAT"] = children_log_format(sys.stdout)
        if settings.DATABASE_OWNER_URL:  # as the owner of the tables (docs/tenancy.md)
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            owner = {**os.environ, "FOREST_DB_AS_OWNER": "1"}
            subprocess.run([*manage, "migrate", "--noinput", "-v0"], check=True, env=owner)  # noqa: S603
        else:
            call_command("migrate", interactive=False, verbosity=0)
        staticfiles.static_collect_if_stale()  # seconds when nothing changed, not a minute
        admin = io.StringIO()
        call_command("ensure_admin", stdout=admin)
        self.stdout.write(admin.getvalue(), ending="")
        credentials = admin.getvalue() if "password:" in admin.getvalue() else ""
        board = settings.DEMO_BOARD_ADDRESS
        if board:
            self._demo_source(board)
        # The children open their own connections; ours must not be shared across the fork.
        for conn in connections.all():
            conn.close()
            if hasattr(conn, "close_pool"):
                conn.close_pool()

        python = shlex.quote(sys.executable)
        celery = f"exec {python} -m celery -A project --quiet"
        manager = Manager()
        try:
            served = serving.serving_processes(
                host=host, port=port, web_port=_free_port(), stream_port=_free_port()
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        for name, command in served.items():
            manager.add_process(name, command)
        manager.add_process("worker", f"{celery} worker -l INFO -c {concurrency} -n worker@%h")
        manager.add_process("beat", f"{celery} beat -l INFO")
        if board:
            board_host, board_port = board.rsplit(":", 1)
            manager.add_process(
                "board",
                f"exec {python} manage.py demo_board --host {shlex.quote(board_host)}"
                f" --port {int(board_port)}",
            )

        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        threading.Thread(
            target=dbscope.carried(self._announce), args=(base, credentials), daemon=True
        ).start()
        manager.loop()
        # 130/143: stopped by Ctrl-C or SIGTERM, as asked. Anything else: a child failed.
        if manager.returncode not in (None, 0, 130, 143):
            sys.exit(manager.returncode)

    def _demo_source(self, board: str) -> None:
        """The demo board's sources (one of each kind) in every workspace of the first admin."""
        admin = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        for workspace in selectors.workspace_list_for_user(user=admin):
            services.demo_source_ensure(
                workspace=workspace, base_url=f"http://{board}", every_kind=True
            )

    def _announce(self, base: str, credentials: str) -> None:
        """Print where Forest is (and a new admin's password) once the web process answers and
        the worker has started, so that it comes after their start-up lines, not under them."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (_web_answers(base) and _worker_answers()):
            time.sleep(0.2)
        if time.monotonic() >= deadline:
            return
        self.stdout.write(
            self.style.SUCCESS("\nForest is running. Ctrl-C stops it.\n")
            + f"  dashboard  {base}/\n  admin      {base}/admin/\n  API docs   {base}/api/docs/\n"
            + credentials
        )
        self.stdout.flush()


def children_log_format(stream: TextIO) -> str:
    """LOG_FORMAT of the children: as set in the environment, else text lines when `stream` is a
    terminal (a person runs `make run`), JSON lines otherwise (compose, a file)."""
    default = logs.default_format(debug=settings.DEBUG, stream=stream)
    return str(environ.Env().str("LOG_FORMAT", default=default))


def _free_port() -> int:
    """An unused loopback port for an internal server (gunicorn, daphne) behind the proxy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _web_answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1):  # noqa: S310 - our own URL
            return True
    except OSError:
        return False


def _worker_answers() -> bool:
    try:
        return bool(celery_app.control.ping(timeout=1))
    except Exception:  # the broker is not up yet: ask again
        return False
