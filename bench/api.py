"""API benchmark: listing bids from 1,000,000 rows, Forest against a stock DRF viewset.

What is measured, in one run on one daphne (served the way `make run` serves it: one process,
project.asgi, the psycopg pool):

- Forest: GET /api/v1/bids/?page_size=50 with a bearer token (authentication, throttling and
  workspace scoping on, throttle rates raised so that they count but never refuse), on page 1
  and at row 900,000 (a keyset cursor made for that row).
- The peer (bench/api_peer.py): a stock ReadOnlyModelViewSet + ModelSerializer over the same
  table with stock CursorPagination (page 1, and the position of row 900,000) and stock
  PageNumberPagination (page 1 and page 18,000), no auth, no throttling, no scoping.
- The SQL floor: EXPLAIN ANALYZE of the query Forest runs for the same page.
- forest_served: Forest's page 1 as `make run` serves it (project/serving.py: nginx in front of
  gunicorn gthread and daphne), against wsgi_stock_cursor: the stock cursor viewset on gunicorn
  sync with 2 workers and Django's persistent connections (CONN_MAX_AGE, no pool), straight on
  its port: the peer a DRF user would deploy. ratio_vs_wsgi_stock = forest_served / that.
- --shapes: also Forest's page 1 under the other server shapes tried (docs/performance.md).
- forest_traced: Forest's page 1 on a second daphne with tracing on (project/tracing.py), its
  spans exported over OTLP/HTTP to a local sink (bench/otlp_sink.py) in this process;
  tracing_overhead_pct = forest_first rps / forest_traced rps - 1, in percent (docs/tracing.md).
- rls_overhead_pct: Forest's page 1 on two more daphnes over the same database, one connected
  as the owner (row-level security not applied) and one as the application's role with
  DATABASE_RLS=on (docs/tenancy.md): how much fewer requests/s the second serves, in percent.
  --rls-only measures only that pair.

Requests/s and latency percentiles come from wrk (Debian's, installed with apt-get when missing)
with --connections keep-alive connections for --duration seconds per endpoint, --rounds rounds
alternating endpoints; medians. Ends by printing one JSON line.

    make bench-api                        # or: .venv/bin/python -m bench.api --rows 200000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import psycopg

from bench.common import (
    ROOT,
    apt_binary,
    bids_database,
    free_port,
    log,
    stop,
    wait_port,
)
from bench.otlp_sink import OtlpSink

DATABASE = "forest_bench_api"
# The processes serving each base URL (a server's leader and, for `make run`'s shape, nginx,
# gunicorn and daphne): their CPU time per request is the figure a shared machine disturbs least.
SERVERS: dict[str, list[int]] = {}
LOAD_SQL = """
INSERT INTO crawls_bid (
    workspace_id, source_id, url, url_hash, title, department, views, post_date, amount,
    deadline, reference, extra, content_hash, etag, last_modified, first_seen_at, last_seen_at,
    changed_at, currency, status, procurement_method, classifications, version)
SELECT %(workspace)s, %(source)s,
    'https://example.org/notices/' || i,
    decode(md5('https://example.org/notices/' || i), 'hex'),
    (ARRAY['[입찰] 도로 보수공사 ', 'Tender: office equipment ', '[긴급] 하수관로 정비공사 ',
           'Supply of LED street lighting '])[1 + i %% 4] || i,
    (ARRAY['서울특별시 도시기반시설본부', 'Busan Port Authority', '조달청 시설사업국',
           'Korea Expressway Corporation', '경기도교육청 재무과', 'Korea Rail Network Authority',
           '부산광역시 건설본부', 'Jeju Special Self-Governing Province'])[1 + i %% 8],
    ((i::bigint * 7919) %% 100000)::int,
    DATE '2026-11-23' - (i %% 3650),
    ((i::bigint * 104729) %% 1000000000)::numeric,
    TIMESTAMPTZ '2026-12-31 18:00+09' - (i %% 365) * interval '1 day',
    'R' || lpad(i::text, 10, '0'),
    '{}'::jsonb, md5(i::text), '', '', now(), now(), now(), '', 'unknown', '', '{}', ''
FROM generate_series(1, %(rows)s) AS i
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--deep", type=int, default=900_000, help="the deep row (900,000)")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep and reuse the loaded database")
    parser.add_argument(
        "--shapes", action="store_true", help="also Forest's page 1 under other server shapes"
    )
    parser.add_argument("--rls-only", action="store_true", help="only the RLS on/off pair")
    return parser.parse_args(argv)


def wrk_run(wrk: str, url: str, *, headers: dict, connections: int, duration: int) -> dict:
    command = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{url}: {non_2xx.group(1)} failed responses\n{out}")

    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            raise RuntimeError(f"{url}: no {percent}% latency in wrk's output\n{out}")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
    }


def get_json(url: str, headers: dict) -> dict:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own server
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {
        "API_RATE_CALLER": "100000000/min",
        "API_RATE_WORKSPACE": "100000000/min",
        "DB_POOL_MAX_SIZE": "20",
    }
    with bids_database(
        DATABASE, rows=args.rows, reuse=args.reuse, settings_module="bench.api_settings", env=env
    ) as loaded:
        figures = _bench(args, loaded=loaded)
    print(json.dumps(figures))
    return 0


def _setup(args, *, loaded: bool):
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - after django.setup()

    from crawls import services  # noqa: PLC0415
    from crawls.models import ApiToken, Source, Workspace  # noqa: PLC0415

    user, _ = get_user_model().objects.get_or_create(username="bench")
    workspace = Workspace.objects.filter(slug="bench").first() or services.workspace_create(
        owner=user, name="bench"
    )
    ApiToken.objects.filter(user=user).delete()
    _, raw = services.token_create(user=user, workspace=workspace, name="bench")
    source = Source.objects.filter(workspace=workspace).first() or services.source_create(
        workspace=workspace,
        name="bench",
        start_urls=["https://example.org/notices"],
        rules={"items": ["a"], "fields": {"title": "h1"}},
    )
    if not loaded:
        started = time.perf_counter()
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(
                LOAD_SQL, {"workspace": workspace.pk, "source": source.pk, "rows": args.rows}
            )
            # The index a user of the stock viewset would add for its ordering (PostgreSQL's
            # DESC means NULLS FIRST, which Forest's NULLS LAST index does not serve).
            conn.execute(
                "CREATE INDEX IF NOT EXISTS bench_peer_post_date "
                "ON crawls_bid (post_date DESC, id DESC)"
            )
            conn.execute("ANALYZE crawls_bid")
        log(f"loaded {args.rows:,} bids in {time.perf_counter() - started:.1f} s")
    return workspace, raw


def _deep_cursors(args, workspace) -> tuple[str, str]:
    """Forest's keyset cursor and the stock cursor for the row before --deep."""
    import base64  # noqa: PLC0415
    from urllib.parse import urlencode  # noqa: PLC0415

    from crawls.api.pagination import KeysetPagination  # noqa: PLC0415

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        post_date, pk = conn.execute(
            "SELECT post_date, id FROM crawls_bid WHERE workspace_id = %s "
            "ORDER BY post_date DESC NULLS LAST, id DESC OFFSET %s LIMIT 1",
            [workspace.pk, args.deep - 1],
        ).fetchone()
    keyset = KeysetPagination()
    keyset.fields = ("post_date", "id")
    forest = keyset.cursor_for(SimpleNamespace(post_date=post_date, id=pk))
    # DRF's cursor: the first ordering field's value (position) and an offset within it.
    stock = base64.b64encode(urlencode({"p": str(post_date)}).encode()).decode()
    return forest, stock


def _sql_floor(path: str, headers: dict) -> float:
    """Median EXPLAIN ANALYZE execution time (ms) of the bids query behind `path`."""
    from django.db import connection  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    client = Client(HTTP_HOST="localhost", **{f"HTTP_{k.upper()}": v for k, v in headers.items()})
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    statement = max(
        (q["sql"] for q in queries.captured_queries if "crawls_bid" in q["sql"]), key=len
    )
    times = []
    with connection.cursor() as cursor:
        for _ in range(15):
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
            times.append(cursor.fetchone()[0][0]["Execution Time"])
    return statistics.median(times)


def _bench(args, *, loaded: bool) -> dict:
    workspace, raw = _setup(args, loaded=loaded)
    forest_deep_cursor, stock_deep_cursor = _deep_cursors(args, workspace)
    auth = {"Authorization": f"Bearer {raw}"}
    size = args.page_size
    deep_page = args.deep // size + 1
    endpoints = {
        "forest_first": (f"/api/v1/bids/?page_size={size}", auth),
        "forest_deep": (f"/api/v1/bids/?page_size={size}&cursor={forest_deep_cursor}", auth),
        "stock_cursor_first": (f"/peer/cursor/?page_size={size}", {}),
        "stock_cursor_deep": (f"/peer/cursor/?page_size={size}&cursor={stock_deep_cursor}", {}),
        "stock_page_first": (f"/peer/pages/?page_size={size}", {}),
        "stock_page_deep": (f"/peer/pages/?page_size={size}&page={deep_page}", {}),
    }
    wrk = apt_binary("wrk", "wrk", install=True)
    if wrk is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    first = f"/api/v1/bids/?page_size={size}"
    stock_first = f"/peer/cursor/?page_size={size}"
    with contextlib.ExitStack() as servers, tempfile.TemporaryDirectory() as tmp:
        base = servers.enter_context(_daphne())
        served = servers.enter_context(_served(Path(tmp) / "served"))
        wsgi_stock = servers.enter_context(_gunicorn("bench.api_wsgi_settings", workers=2))
        # --- tracing on (docs/tracing.md): the same daphne, exporting to a local OTLP sink
        sink = servers.enter_context(OtlpSink(keep=False))
        traced = servers.enter_context(_daphne(OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint))
        # Same rows in the same order on page 1, from both, on every server.
        forest_ids = [r["id"] for r in get_json(base + first, auth)["results"]]
        for where in (base, served, wsgi_stock):
            stock_ids = [r["id"] for r in get_json(where + stock_first, {})["results"]]
            assert forest_ids == stock_ids, f"Forest and the peer disagree on page 1 ({where})"
        assert [r["id"] for r in get_json(served + first, auth)["results"]] == forest_ids
        deep = get_json(base + endpoints["forest_deep"][0], auth)["results"]
        assert len(deep) == size, "the deep cursor did not land inside the table"
        targets = {name: (base + path, headers) for name, (path, headers) in endpoints.items()}
        targets["forest_served"] = (served + first, auth)
        targets["wsgi_stock_cursor"] = (wsgi_stock + stock_first, {})
        targets["forest_traced"] = (traced + first, auth)
        if args.shapes:
            for name, where in _shapes(servers, Path(tmp)).items():
                targets[f"shape_{name}"] = (where + first, auth)
        if args.rls_only:
            targets.clear()
        rls_off, rls_on = _rls_pair(servers)
        for name, where in (("rls_off", rls_off), ("rls_on", rls_on)):
            assert [r["id"] for r in get_json(where + first, auth)["results"]] == forest_ids
            targets[name] = (where + first, auth)
        for url, headers in targets.values():  # warm up
            wrk_run(wrk, url, headers=headers, connections=args.connections, duration=2)
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for round_ in range(args.rounds):
            for name, (url, headers) in targets.items():
                pids = SERVERS[url[: url.index("/", len("http://"))]]
                cpu = _cpu_seconds(pids)
                result = wrk_run(
                    wrk, url, headers=headers, connections=args.connections, duration=args.duration
                )
                requests = result["rps"] * args.duration
                result["cpu_ms_per_req"] = round((_cpu_seconds(pids) - cpu) * 1000 / requests, 3)
                runs[name].append(result)
                log(f"round {round_ + 1} {name}: {result}")
    median = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    rls = {
        "rls_overhead_pct": round(
            (1 - median["rls_on"]["rps"] / median["rls_off"]["rps"]) * 100, 1
        ),
        "rls_cpu_overhead_pct": round(
            (median["rls_on"]["cpu_ms_per_req"] / median["rls_off"]["cpu_ms_per_req"] - 1) * 100,
            1,
        ),
        "rls_endpoints": {name: median[name] for name in ("rls_off", "rls_on")},
    }
    if args.rls_only:
        return {**rls, "rows": args.rows, "connections": args.connections, "rounds": args.rounds}
    floor = _sql_floor(endpoints["forest_first"][0], auth)
    floor_deep = _sql_floor(endpoints["forest_deep"][0], auth)
    return {
        "forest_first_p50_ms": median["forest_first"]["p50_ms"],
        "forest_deep_p50_ms": median["forest_deep"]["p50_ms"],
        "forest_rps": median["forest_first"]["rps"],
        "stock_cursor_rps": median["stock_cursor_first"]["rps"],
        "stock_page_deep_p50_ms": median["stock_page_deep"]["p50_ms"],
        "sql_floor_p50_ms": round(floor, 3),
        "ratio_rps": round(median["forest_first"]["rps"] / median["stock_cursor_first"]["rps"], 2),
        "forest_served_rps": median["forest_served"]["rps"],
        "wsgi_stock_cursor_rps": median["wsgi_stock_cursor"]["rps"],
        "ratio_vs_wsgi_stock": round(
            median["forest_served"]["rps"] / median["wsgi_stock_cursor"]["rps"], 2
        ),
        # CPU per request, all server processes counted (nginx too for forest_served): the
        # ratio a busy shared machine disturbs least.
        "cpu_ratio_vs_wsgi_stock": round(
            median["wsgi_stock_cursor"]["cpu_ms_per_req"]
            / median["forest_served"]["cpu_ms_per_req"],
            2,
        ),
        "deep_over_first": round(
            median["forest_deep"]["p50_ms"] / median["forest_first"]["p50_ms"], 2
        ),
        "sql_floor_deep_p50_ms": round(floor_deep, 3),
        # Tracing on, every request's spans exported (docs/tracing.md): at most 10.
        "tracing_overhead_pct": round(
            (median["forest_first"]["rps"] / median["forest_traced"]["rps"] - 1) * 100, 1
        ),
        "tracing_overhead_cpu_pct": round(
            (
                median["forest_traced"]["cpu_ms_per_req"] / median["forest_first"]["cpu_ms_per_req"]
                - 1
            )
            * 100,
            1,
        ),
        "tracing_spans_exported": sink.count,
        **rls,
        "endpoints": median,
        "rows": args.rows,
        "page_size": size,
        "connections": args.connections,
        "rounds": args.rounds,
    }


def _spawn(command: list[str] | str, what: str, port: int, **env: str) -> Iterator[str]:
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            shell=isinstance(command, str), env={**os.environ, **env},
        )  # fmt: skip
        try:
            wait_port(port, proc, what=what)
            SERVERS[f"http://127.0.0.1:{port}"] = [proc.pid]
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc, group=True)


@contextlib.contextmanager
def _daphne(**env: str) -> Iterator[str]:
    """Today's shape: one daphne for everything (project.asgi, the psycopg pool)."""
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port)]
    yield from _spawn([*command, "project.asgi:application"], "daphne", port, **env)


def _rls_pair(servers: contextlib.ExitStack) -> tuple[str, str]:
    """Two daphnes on the bench database: as the owner (no RLS) and as the application's role
    with DATABASE_RLS=on (the embedded server's forest_app, granted here)."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    from django.test import override_settings  # noqa: PLC0415 - after django.setup()

    from project import dbscope, runtime  # noqa: PLC0415

    with override_settings(DATABASE_APP_ROLE=runtime.APP_ROLE):
        dbscope.grant_app_role("default")
    parts = urlsplit(os.environ["DATABASE_URL"])
    app = parts._replace(netloc=f"{runtime.APP_ROLE}@{parts.netloc.rpartition('@')[2]}")
    off = servers.enter_context(_daphne(DATABASE_RLS="off"))
    on = servers.enter_context(_daphne(DATABASE_URL=urlunsplit(app), DATABASE_RLS="on"))
    return off, on


@contextlib.contextmanager
def _gunicorn(settings_module: str, *, workers: int, threads: int = 1) -> Iterator[str]:
    """gunicorn straight on a port (sync, or gthread when threads > 1)."""
    port = free_port()
    kind = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]
    command = [
        sys.executable, "-m", "gunicorn", "project.wsgi:application", "-b", f"127.0.0.1:{port}",
        "-w", str(workers), *kind, "--keep-alive", "75",
    ]  # fmt: skip
    yield from _spawn(command, "gunicorn", port, DJANGO_SETTINGS_MODULE=settings_module)


@contextlib.contextmanager
def _served(config_dir: Path, *, workers: int | None = None, threads: int | None = None):
    """Forest as `make run` serves it: nginx in front of gunicorn and daphne."""
    from project import serving  # noqa: PLC0415 - after django.setup()

    config_dir.mkdir(parents=True)
    ports = {"proxy": free_port(), "web": free_port(), "stream": free_port()}
    commands = serving.serving_processes(
        host="127.0.0.1", port=ports["proxy"], web_port=ports["web"],
        stream_port=ports["stream"], config_dir=config_dir, workers=workers, threads=threads,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        inner = []
        for name in ("web", "stream"):
            spawn = contextlib.contextmanager(_spawn)
            inner += SERVERS[stack.enter_context(spawn(commands[name], name, ports[name]))]
        for base in _spawn(commands["proxy"], "nginx", ports["proxy"]):
            SERVERS[base] += inner
            yield base


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children (workers) so far."""
    total = 0.0
    for pid in pids:
        leader = psutil.Process(pid)
        for proc in [leader, *leader.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def _shapes(servers: contextlib.ExitStack, tmp: Path) -> dict[str, str]:
    """The server shapes tried for Forest's pages and API (docs/performance.md)."""
    api = "bench.api_settings"
    return {
        "gunicorn_sync2": servers.enter_context(_gunicorn(api, workers=2)),
        "gunicorn_gthread2x4": servers.enter_context(_gunicorn(api, workers=2, threads=4)),
        "gunicorn_sync3": servers.enter_context(_gunicorn(api, workers=3)),
        "nginx_gthread2x4": servers.enter_context(_served(tmp / "gthread", threads=4)),
    }


if __name__ == "__main__":
    raise SystemExit(main())
