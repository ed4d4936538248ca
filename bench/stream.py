"""Stream benchmark: latency from commit to WebSocket receipt, Forest against a stock consumer.

One daphne (served the way `make run` serves it: one process, the project's ASGI app plus the
peer's route, bench/stream_peer.py) on a database and a Redis db of its own. For 1, 100 and
1,000 clients of one crawl, a worker-like process (bench/stream_writer.py) appends events through
crawls.events.event_append and notes when each one committed; client processes
(bench/stream_clients.py, asyncio tasks) note when each arrives. Forest's clients use
/ws/crawls/<id>/ with a bearer token; the peer's, a stock consumer that forwards the same group
messages (no auth, no log, no replay). Lost: sequences a client never received. Rounds alternate
Forest and the peer; medians. Ends by printing one JSON line.

    make bench-stream                     # or: .venv/bin/python -m bench.stream --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

from bench.common import database_recreate, database_url, free_port, log, stop, wait_port

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "forest_bench_stream"
REDIS_DB = 12  # the bench's own: the suite uses 15 (or TEST_REDIS_URL), `make run` 0
# (clients, events per second, events): 20/s is the brief's pace; at 1,000 clients, 4/s is a
# crawl's progress pace (CRAWL_PROGRESS_INTERVAL = 0.25 s), since one process delivers ~4,000/s.
LEVELS = ((1, 20.0, 100), (100, 20.0, 100), (1000, 4.0, 20))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--servers", type=int, default=1, help="daphne processes; client processes spread over them"
    )
    parser.add_argument(
        "--clients",
        type=int,
        action="append",
        help="only these levels (1, 100, 1000; repeatable): a quick A/B; the other keys are null",
    )
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    from project import runtime  # noqa: PLC0415 - Django loads after the bootstrap

    # Benches make their databases as the server's superuser: one role (bench/api.py measures
    # row-level security itself).
    os.environ.setdefault("DATABASE_RLS", "off")
    runtime.bootstrap()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    admin_url = database_url(os.environ["DATABASE_URL"], "postgres")
    database_recreate(admin_url, DATABASE)
    redis_base = os.environ["REDIS_URL"].rstrip("/").rsplit("/", 1)[0]
    os.environ.update(
        DATABASE_URL=database_url(os.environ["DATABASE_URL"], DATABASE),
        REDIS_URL=f"{redis_base}/{REDIS_DB}",
        CRAWL_MAX_ACTIVE_PER_WORKSPACE="1000",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True
    )
    django.setup()
    from project import dbscope  # noqa: PLC0415 - after django.setup()

    dbscope.set_scope(dbscope.SYSTEM)  # a script outside manage.py: maintenance (docs/tenancy.md)
    try:
        figures = _bench(args)
    finally:
        from django.db import connections  # noqa: PLC0415

        connections.close_all()
        database_recreate(admin_url, DATABASE, create=False)
    print(json.dumps(figures))
    return 0


def _setup():
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - after django.setup()

    from crawls import services  # noqa: PLC0415

    user = get_user_model().objects.create_user("bench")
    workspace = services.workspace_create(owner=user, name="bench")
    _, raw = services.token_create(user=user, workspace=workspace, name="bench")
    source = services.source_create(
        workspace=workspace,
        name="bench",
        start_urls=["https://example.org/notices"],
        rules={"items": ["a"], "fields": {"title": "h1"}},
    )
    return source, raw


def _measure(ports: list[int], path: str, *, level: tuple, source, token: str, args) -> dict:
    """One run: connect the clients, write the events, collect latencies and losses."""
    from crawls import services  # noqa: PLC0415
    from crawls.models import Crawl  # noqa: PLC0415

    clients, rate, count = level
    crawl = services.crawl_start(source=source, workers=0)
    with tempfile.TemporaryDirectory() as tmp:
        split = [clients // args.client_processes] * args.client_processes
        split[0] += clients - sum(split)
        procs = []
        for i, n in enumerate(n for n in split if n):
            port = ports[i % len(ports)]
            url = f"ws://127.0.0.1:{port}{path.format(crawl=crawl.pk)}"
            command = [
                sys.executable, "-m", "bench.stream_clients", "--url", url, "--clients", str(n),
                "--origin", f"http://127.0.0.1:{port}", "--token", token,
                "--out", f"{tmp}/clients-{i}.json", *(["--resume"] if "crawls" in path else []),
            ]  # fmt: skip
            procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True))
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", "clients did not connect"
        time.sleep(1.0)  # let the last handshakes join their groups
        times = f"{tmp}/times.txt"
        writer = [
            sys.executable, "-m", "bench.stream_writer", "--crawl", str(crawl.pk),
            "--count", str(count), "--rate", str(rate), "--final", "--times", times,
        ]  # fmt: skip
        subprocess.run(writer, cwd=ROOT, check=True)
        for proc in procs:
            proc.wait(180)
        committed = {}
        for line in Path(times).read_text().splitlines():
            _, seq, at = line.split()
            committed[int(seq)] = float(at)
        records, errors, resumed = [], [], 0
        for i in range(len(procs)):
            result = json.loads(Path(f"{tmp}/clients-{i}.json").read_text())
            records += result["records"]
            errors += result["errors"]
            resumed += result["resumed"]
    Crawl.objects.filter(pk=crawl.pk).update(status=Crawl.Status.SUCCEEDED)
    latencies, lost, duplicates, last_receipt = [], 0, 0, 0.0
    for record in records:
        seen = [seq for seq, _ in record if seq in committed]
        duplicates += len(seen) - len(set(seen))
        lost += len(committed) - len(set(seen))
        for seq, at in record:
            if seq in committed:
                latencies.append((at - committed[seq]) * 1000)
                last_receipt = max(last_receipt, at)
    span = max(last_receipt - min(committed.values()), 1e-9)
    result = {
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "msgs_per_s": round(len(latencies) / span),
        "lost": lost,
        "duplicates": duplicates,
        "resumed": resumed,
        "client_errors": errors[:3],
    }
    log(f"{path} {clients} clients at {rate:g}/s: {result}")
    return result


def _bench(args) -> dict:
    source, token = _setup()
    paths = (("forest", "/ws/crawls/{crawl}/"), ("peer", "/ws/peer/{crawl}/"))
    ports = [free_port() for _ in range(args.servers)]
    runs: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryFile() as output:
        command = [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p"]
        app = "bench.stream_peer:application"
        servers = [
            subprocess.Popen(
                [*command, str(port), app], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
            )
            for port in ports
        ]
        try:
            for port, server in zip(ports, servers, strict=True):
                wait_port(port, server, what="daphne")
            levels = [level for level in LEVELS if level[0] in (args.clients or [level[0]])]
            for _ in range(args.rounds):
                for level in levels:
                    for name, path in paths:
                        result = _measure(
                            ports, path, level=level, source=source, token=token, args=args
                        )
                        runs.setdefault((name, level[0]), []).append(result)
        finally:
            for server in servers:
                stop(server)
            output.seek(0)
            tail = output.read().decode(errors="replace")[-2000:]
            if "Traceback" in tail:
                log(tail)
    median = {
        key: {
            field: statistics.median(r[field] for r in results)
            for field in ("p50_ms", "p99_ms", "msgs_per_s", "lost", "duplicates", "resumed")
        }
        for key, results in runs.items()
    }
    none = dict.fromkeys(("p50_ms", "p99_ms", "msgs_per_s", "lost", "duplicates", "resumed"))

    def at(name: str, clients: int) -> dict:
        return median.get((name, clients), none)

    def total(name: str, field: str) -> int:
        return sum(at(name, c)[field] or 0 for c, _, _ in LEVELS)

    top = max(clients for clients, _, _ in LEVELS)
    figures = {
        "p50_ms_1_client": at("forest", 1)["p50_ms"],
        "p99_ms_1_client": at("forest", 1)["p99_ms"],
        "p99_ms_100_clients": at("forest", 100)["p99_ms"],
        "p99_ms_1000_clients": at("forest", top)["p99_ms"],
        "msgs_per_s": at("forest", 100)["msgs_per_s"],
        "msgs_per_s_1000_clients": at("forest", top)["msgs_per_s"],
        "lost_events": total("forest", "lost"),
        "duplicate_events": total("forest", "duplicates"),
        "resumed_connections": total("forest", "resumed"),
        "peer_p50_ms_1_client": at("peer", 1)["p50_ms"],
        "peer_p99_ms_1_client": at("peer", 1)["p99_ms"],
        "peer_p99_ms_100_clients": at("peer", 100)["p99_ms"],
        "peer_p99_ms_1000_clients": at("peer", top)["p99_ms"],
        "peer_msgs_per_s": at("peer", 100)["msgs_per_s"],
        "peer_lost_events": total("peer", "lost"),
        "levels": [{"clients": c, "events_per_s": r, "events": n} for c, r, n in LEVELS],
        "rounds": args.rounds,
        "servers": args.servers,
    }
    ours, peer = figures["p99_ms_100_clients"], figures["peer_p99_ms_100_clients"]
    figures["ratio_p99_100_clients"] = round(ours / peer, 2) if ours and peer else None
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
