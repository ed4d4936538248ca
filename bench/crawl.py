"""Crawl benchmark: Forest against Scrapy on the same demo board, in the same run.

What is measured: pages per second crawling a demo board of --pages detail pages (10,000: 500
listing pages and 10,000 notices, 10,500 pages) end to end, for

- Forest: one Celery worker process (prefork, one pool child) on a queue of its own, on a fresh
  database `forest_bench` of the same PostgreSQL, Forest's default settings but for
  CRAWL_CONCURRENCY (= --concurrency) and, if given, --batch-size;
  time from `crawl_start` (create) to `Crawl.finished_at` (succeeded), every bid stored in
  PostgreSQL and checked, the events logged and received from the channel layer. Also the pool
  child's CPU time and peak RSS, and the CPU of the bench database's PostgreSQL backends.
- Forest on the board's JSON API (`json_items_per_s`): the same notices served 100 a page by
  the aiohttp demo board behind a key (DEMO_JSON_RULES: page-number pagination with a total),
  crawled by the same worker and checked alike; compared per stored item with the HTML crawl
  (`json_vs_html_per_item`, which must not fall below 1). `--no-json` leaves it out.
- Forest without quality collection (`quality_overhead_pct`): the same HTML crawl by a second
  worker (its own queue, QUALITY_COLLECT=false), alternating with the first; the overhead is
  (median rate without / median rate with - 1) * 100 (docs/quality.md; at most 5).
- Forest with tracing on (`tracing_overhead_pct`): the same HTML crawl by a third worker (its
  own queue, OTEL_EXPORTER_OTLP_ENDPOINT set), every span exported over OTLP/HTTP to a local sink
  (bench/otlp_sink.py) in this process; (median rate without / median rate with - 1) * 100
  (docs/tracing.md; at most 10). `--no-tracing` leaves it out.
- Scrapy: `scrapy runspider bench/crawl_spider.py` writing a JSONL feed, every item checked
  against the board; time from its stats' start_time to finish_time (`elapsed_time_seconds`:
  spider opened to closed, leaving out interpreter and reactor start-up), wall time on stderr.
  Stock settings (the asyncio reactor) but for the concurrency, ROBOTSTXT_OBEY and LOG_LEVEL
  INFO instead of DEBUG (a log line per request and per item would only slow Scrapy down).

- The text board (`ratio_text_board`, bench/crawl_text.py): 10,000 detail pages of 5-15 kB of
  text behind a sequential pager (listing page k links to k+1 and its 20 notices only), static
  files served by the same nginx, crawled by Forest (TEXT_RULES) and by Scrapy
  (bench/crawl_text_spider.py), every item checked; and its floor: a bare aiohttp + selectolax
  fetch-and-parse of every page of it (`floor_text_pages_per_s`, `forest_text_share_of_floor`).
  `--text-pages 0` leaves it out; the aiohttp demo board has none.

CPU per page is printed for both sides on both boards; Forest's counts the pool children of its
worker (--workers: runs per crawl and pool size, default CRAWL_WORKERS_PER_CRAWL) and their
extraction sandboxes.

Both with the same concurrency (--concurrency, total and per host) and robots.txt obeyed,
alternating, --runs times each; medians go in the JSON line, each run on stderr. The board is
exported as static files and served by nginx (one worker process, keep-alive, no access log),
installed with apt-get when missing and allowed; otherwise by the aiohttp demo board. The
server's raw rate (an aiohttp client loop at the same concurrency, before the crawls) is printed
so that it can be seen not to be the bottleneck.

    make bench-crawl                      # or: .venv/bin/python -m bench.crawl --runs 5
    make bench-crawl BENCH_ARGS="--pages 2000 --runs 1"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import django
import psutil
from django.conf import settings as django_settings

from bench import crawl_text
from bench.common import (
    database_recreate,
    database_url,
    log,
    stop,
)
from bench.crawl_board import (
    Server,
    aiohttp_board_start,
    nginx_find,
    nginx_start,
    process_cpu,
    server_rate,
)
from bench.crawl_scrapy import scrapy_once
from bench.otlp_sink import OtlpSink

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "forest_bench"
# Forest runs with its defaults unless told otherwise (--batch-size). Measured on a 2-core
# machine, medians of 3 runs: CRAWL_BATCH_SIZE 100 → 1,015 pages/s, 200 (the default) → 1,098,
# 400 → 1,199, 1000 → 1,231 with the widest spread; beyond ~400 the board's pagination (a listing
# page links only ±5 pages) leaves the frontier with fewer URLs than a batch could take.


# --- The run ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10_000, help="detail pages (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (3)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Forest's CRAWL_BATCH_SIZE (default: the project's setting)",
    )
    parser.add_argument(
        "--server", choices=("auto", "nginx", "aiohttp"), default="auto",
        help="auto: nginx (installed when missing, as root), else the aiohttp demo board",
    )  # fmt: skip
    parser.add_argument("--server-requests", type=int, default=5000, help="for the raw rate")
    parser.add_argument(
        "--text-pages", type=int, default=10_000,
        help="detail pages of the text board (10000; 0 leaves it out; nginx only)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None,
        help="Forest's runs per crawl, and the worker's pool size (default: Forest's default, "
        "CRAWL_WORKERS_PER_CRAWL)",
    )  # fmt: skip
    parser.add_argument("--only", choices=("forest", "scrapy"), help="measure one side only")
    parser.add_argument(
        "--no-json", action="store_true", help="leave out Forest's run of the board's JSON API"
    )
    parser.add_argument(
        "--no-tracing", action="store_true", help="leave out Forest's run with tracing on"
    )
    parser.add_argument(
        "--scrapy-setting", action="append", default=[], metavar="NAME=VALUE",
        help="another Scrapy setting (repeatable), for experiments: not stock any more",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Django may load only after the bootstrap has chosen the servers and the environment
    # names the bench database.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from crawls.demo import board  # noqa: PLC0415 - see above
    from project import runtime  # noqa: PLC0415

    # Benches make their databases as the server's superuser: one role (bench/api.py measures
    # row-level security itself).
    os.environ.setdefault("DATABASE_RLS", "off")
    runtime.bootstrap()
    with contextlib.ExitStack() as cleanup:
        tmp = Path(tempfile.mkdtemp(prefix="forest-bench-crawl-"))
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        result = _bench(args, board, tmp, cleanup)
    print(json.dumps(result), flush=True)
    return 0


@dataclass
class Forest:
    """The Forest side, ready to crawl: a worker on its own queue and database, a workspace."""

    module: object  # bench.crawl_forest, importable once Django is set up
    workspace: object
    child: list[psutil.Process]
    listener: object
    start_url: str
    concurrency: int
    pages: int
    # The quality peer: a worker with QUALITY_COLLECT=false on a queue of its own.
    peer_child: list[psutil.Process] | None = None
    peer_queue: str = ""
    workers: int = 1  # runs (Celery tasks) per crawl, and pool processes of each worker
    # The tracing peer: a worker exporting its spans to a local OTLP sink, on a queue of its own.
    traced_child: list[psutil.Process] | None = None
    traced_queue: str = ""
    sink: OtlpSink | None = None

    def crawl(
        self, name: str, *, expected_urls=None, expected_pages=None, max_pages=None, peer=False,
        traced=False, **kind,
    ):  # fmt: skip
        """A crawl of the HTML board; with kind=, start_url=, rules=, secrets=: of that source;
        peer: by the worker that collects no quality counters; traced: by the tracing one."""
        queue = django_settings.CRAWL_QUEUE
        if peer:
            django_settings.CRAWL_QUEUE = self.peer_queue
        if traced:
            django_settings.CRAWL_QUEUE = self.traced_queue
        child = self.peer_child if peer else self.traced_child if traced else self.child
        try:
            return self.module.crawl_once(
                self.workspace, name=name, start_url=kind.pop("start_url", self.start_url),
                concurrency=self.concurrency, listener=self.listener, child=child,
                expected_urls=expected_urls, expected_pages=expected_pages,
                max_pages=max_pages or 2 * self.pages, workers=self.workers, **kind,
            )  # fmt: skip
        finally:
            django_settings.CRAWL_QUEUE = queue


def _forest_start(
    args,
    server: Server,
    pages: int,
    tmp: Path,
    cleanup: contextlib.ExitStack,
    api: Server | None = None,
) -> Forest:
    """A fresh bench database, one Celery worker (one pool child) on a queue of its own."""
    admin_url = os.environ["DATABASE_URL"]
    queue = f"bench-crawl-{uuid.uuid4().hex[:8]}"
    database_recreate(admin_url, DATABASE)
    cleanup.callback(database_recreate, admin_url, DATABASE, create=False)
    os.environ.update(
        DATABASE_URL=database_url(admin_url, DATABASE),
        CRAWL_QUEUE=queue,
        CRAWL_ALLOWLIST=",".join(
            urlsplit(s.base_url).netloc for s in (server, api) if s is not None
        ),
        CRAWL_CONCURRENCY=str(args.concurrency),
    )
    if args.batch_size:
        os.environ["CRAWL_BATCH_SIZE"] = str(args.batch_size)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True
    )
    django.setup()
    from project import dbscope  # noqa: PLC0415 - after django.setup()

    dbscope.set_scope(dbscope.SYSTEM)  # a script outside manage.py: maintenance (docs/tenancy.md)
    from bench import crawl_forest  # noqa: PLC0415 - needs Django set up on the bench database

    args.batch_size = django_settings.CRAWL_BATCH_SIZE  # what the worker will use
    if args.workers is None:
        args.workers = django_settings.CRAWL_WORKERS_PER_CRAWL  # Forest's default shape

    child = _worker_start(crawl_forest, queue, tmp, cleanup, pool=args.workers)
    peer_queue = f"{queue}-peer"
    peer_child = _worker_start(
        crawl_forest, peer_queue, tmp, cleanup, pool=args.workers,
        CRAWL_QUEUE=peer_queue, QUALITY_COLLECT="false",
    )  # fmt: skip
    workspace = crawl_forest.workspace_create()
    listener = crawl_forest.EventListener(workspace.pk)
    cleanup.callback(listener.close)
    log(f"forest: CRAWL_BATCH_SIZE={args.batch_size}, {args.workers} runs per crawl")
    forest = Forest(
        crawl_forest, workspace, child, listener, server.start_url, args.concurrency, pages,
        peer_child, peer_queue, args.workers,
    )  # fmt: skip
    # A long-lived worker has its modules imported and its caches warm.
    forest.crawl("Warm-up", max_pages=300)
    forest.crawl("Peer warm-up", max_pages=300, peer=True)
    if not args.no_tracing:  # --- tracing on (docs/tracing.md)
        forest.sink = cleanup.enter_context(OtlpSink(keep=False))
        forest.traced_queue = f"{queue}-traced"
        forest.traced_child = _worker_start(
            crawl_forest, forest.traced_queue, tmp, cleanup, pool=args.workers,
            CRAWL_QUEUE=forest.traced_queue, OTEL_EXPORTER_OTLP_ENDPOINT=forest.sink.endpoint,
        )  # fmt: skip
        forest.crawl("Traced warm-up", max_pages=300, traced=True)
    return forest


def _worker_start(
    crawl_forest, queue: str, tmp: Path, cleanup, *, pool: int = 1, **env: str
) -> list[psutil.Process]:
    """One Celery worker (`pool` pool children) on `queue`; its pool children."""
    nodename = f"{queue}@{socket.gethostname()}"
    with (tmp / f"{queue}.log").open("wb") as output:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "project", "worker", "-P", "prefork",
                "-c", str(pool), "-Q", queue, "-n", nodename, "-l", "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    cleanup.callback(crawl_forest.queue_delete, queue)
    cleanup.callback(stop, worker, group=True)
    children = crawl_forest.worker_wait(nodename, psutil.Process(worker.pid), pool=pool)
    pids = ", ".join(str(c.pid) for c in children)
    log(f"forest: worker {nodename} (pool children {pids}) {' '.join(env) or ''}")
    return children


def _bench(args, board, tmp: Path, cleanup: contextlib.ExitStack) -> dict:
    concurrency = args.concurrency
    config = board.BoardConfig.bench(args.pages)
    pages = config.listing_pages + config.base_notices

    nginx = nginx_find(install=True) if args.server != "aiohttp" else None
    if nginx is None and args.server == "nginx":
        raise SystemExit("nginx is not installed and could not be")
    server = (
        nginx_start(nginx, board, args.pages, tmp, args.text_pages)
        if nginx
        else aiohttp_board_start(args.pages, tmp)
    )
    cleanup.callback(stop, server.proc, group=nginx is None)
    server_proc = psutil.Process(server.proc.pid)
    expected = board.expected_bids(config, base_url=server.base_url)
    detail_paths = [urlsplit(url).path for url in expected]
    rps = server_rate(
        server.base_url, detail_paths, concurrency=concurrency, requests=args.server_requests
    )
    log(f"server raw rate: {rps:,.0f} requests/s ({args.server_requests} detail pages, "
        f"{concurrency} connections, one aiohttp client: a lower bound)")  # fmt: skip
    floor, floor_cpu = None, None
    if server.text:
        paths = crawl_text.page_paths({urlsplit(url).path: i for url, i in server.text.items()})
        floor, floor_cpu = crawl_text.floor_rate(server.base_url, paths, concurrency=concurrency)
        log(f"text board floor (bare aiohttp + selectolax, every page): {floor:,.0f} pages/s, "
            f"CPU {floor_cpu:.3f} s/1k pages")  # fmt: skip

    # The board's JSON API (the same notices, 100 a page, behind a key) is served by the
    # aiohttp demo board: a second server when the HTML board is nginx's static export.
    api = None
    if args.only != "scrapy" and not args.no_json:
        api = server if nginx is None else aiohttp_board_start(args.pages, tmp)
        if api is not server:
            cleanup.callback(stop, api.proc, group=True)
    forest = (
        None if args.only == "scrapy" else _forest_start(args, server, pages, tmp, cleanup, api)
    )

    forest_runs, scrapy_runs, json_runs, peer_runs, traced_runs = [], [], [], [], []
    text_runs, scrapy_text_runs = [], []
    json_expected = (
        {f"{api.base_url}{t.notice.path}" for t in board.tenders(config)} if api else set()
    )
    json_pages = -(-len(json_expected) // board.DEMO_JSON_RULES["pagination"]["size"])
    for run in range(1, args.runs + 1):
        if forest is not None and api is not None:
            j = forest.crawl(
                f"JSON run {run}", kind="json", start_url=f"{api.base_url}{board.API_PATH}",
                rules=board.DEMO_JSON_RULES, secrets={"api_key": board.DEMO_API_KEY},
                expected_urls=json_expected, expected_pages=json_pages,
            )  # fmt: skip
            json_runs.append(j)
            log(
                f"forest JSON run {run}: {j.items} items ({j.pages} API pages) in "
                f"{j.seconds:.2f} s = {j.items / j.seconds:,.0f} items/s; worker CPU "
                f"{j.cpu_seconds:.1f} s = {j.cpu_seconds / j.items * 1000:.2f} s/1k items"
            )
        if forest is not None:
            busy = process_cpu(server_proc)
            f = forest.crawl(f"Run {run}", expected_urls=set(expected), expected_pages=pages)
            busy = process_cpu(server_proc) - busy
            forest_runs.append(f)
            postgres = (
                f"{f.postgres_cpu_seconds:.1f} s" if f.postgres_cpu_seconds is not None else "?"
            )
            log(
                f"forest run {run}: {f.pages} pages in {f.seconds:.2f} s = "
                f"{f.pages / f.seconds:,.0f} pages/s (wall {f.wall_seconds:.2f} s); "
                f"worker CPU {f.cpu_seconds:.1f} s = {f.cpu_seconds / f.pages * 1000:.2f} s/1k "
                f"pages, peak RSS {f.peak_rss_mb:.0f} MB; PostgreSQL CPU {postgres}; "
                f"server CPU {busy:.1f} s; {f.items} bids stored; "
                f"events {f.events_logged} logged, {f.events_received} received"
            )
            p = forest.crawl(
                f"Peer run {run}", expected_urls=set(expected), expected_pages=pages, peer=True
            )
            peer_runs.append(p)
            log(
                f"forest run {run} without quality collection: {p.pages} pages in "
                f"{p.seconds:.2f} s = {p.pages / p.seconds:,.0f} pages/s; worker CPU "
                f"{p.cpu_seconds:.1f} s = {p.cpu_seconds / p.pages * 1000:.2f} s/1k pages"
            )
        if forest is not None and forest.traced_child is not None:
            tr = forest.crawl(
                f"Traced run {run}", expected_urls=set(expected), expected_pages=pages, traced=True
            )
            traced_runs.append(tr)
            log(
                f"forest run {run} with tracing on: {tr.pages} pages in {tr.seconds:.2f} s = "
                f"{tr.pages / tr.seconds:,.0f} pages/s; worker CPU {tr.cpu_seconds:.1f} s = "
                f"{tr.cpu_seconds / tr.pages * 1000:.2f} s/1k pages; "
                f"{forest.sink.count if forest.sink else 0} spans exported so far"
            )
            if forest.sink:
                common = ", ".join(f"{n} {c}" for n, c in forest.sink.names.most_common(8))
                log(f"spans so far by name: {common}")
        if forest is not None and server.text:
            t = forest.crawl(
                f"Text run {run}", start_url=f"{server.base_url}{crawl_text.start_path()}",
                rules=crawl_text.TEXT_RULES, expected_urls=set(server.text),
                expected_pages=server.text_pages,
            )  # fmt: skip
            text_runs.append(t)
            log(
                f"forest text run {run}: {t.pages} pages in {t.seconds:.2f} s = "
                f"{t.pages / t.seconds:,.0f} pages/s; worker CPU {t.cpu_seconds:.1f} s = "
                f"{t.cpu_seconds / t.pages * 1000:.2f} s/1k pages; {t.items} bids stored"
            )
        if args.only != "forest" and server.text:
            st = scrapy_once(
                server, concurrency=concurrency, tmp=tmp, run=run, expected=server.text,
                pages=server.text_pages, extra_settings=args.scrapy_setting, board="text",
            )  # fmt: skip
            scrapy_text_runs.append(st)
            log(
                f"scrapy text run {run}: {st.pages} pages in {st.seconds:.2f} s = "
                f"{st.pages / st.seconds:,.0f} pages/s; CPU {st.cpu_seconds:.1f} s = "
                f"{st.cpu_seconds / st.pages * 1000:.2f} s/1k pages; {st.items} items"
            )
        if args.only != "forest":
            busy = process_cpu(server_proc)
            s = scrapy_once(
                server,
                concurrency=concurrency,
                tmp=tmp,
                run=run,
                expected=expected,
                pages=pages,
                extra_settings=args.scrapy_setting,
            )
            busy = process_cpu(server_proc) - busy
            scrapy_runs.append(s)
            log(
                f"scrapy run {run}: {s.pages} pages ({s.fetched} fetched) in {s.seconds:.2f} s = "
                f"{s.pages / s.seconds:,.0f} pages/s (wall {s.wall_seconds:.2f} s); "
                f"CPU {s.cpu_seconds:.1f} s = {s.cpu_seconds / s.pages * 1000:.2f} s/1k pages, "
                f"peak RSS {s.peak_rss_mb:.0f} MB; server CPU {busy:.1f} s; {s.items} items"
            )

    def median(values) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def rounded(value: float | None, digits: int = 1) -> float | None:
        return None if value is None else round(value, digits)

    forest_rate = median(r.pages / r.seconds for r in forest_runs)
    html_items_rate = median(r.items / r.seconds for r in forest_runs)
    json_items_rate = median(r.items / r.seconds for r in json_runs)
    scrapy_rate = median(r.pages / r.seconds for r in scrapy_runs)
    peer_rate = median(r.pages / r.seconds for r in peer_runs)
    text_rate = median(r.pages / r.seconds for r in text_runs)
    traced_rate = median(r.pages / r.seconds for r in traced_runs)
    scrapy_text_rate = median(r.pages / r.seconds for r in scrapy_text_runs)
    per_1k = 1000 / pages
    return {
        "forest_pages_per_s": rounded(forest_rate),
        "scrapy_pages_per_s": rounded(scrapy_rate),
        "ratio": rounded(forest_rate / scrapy_rate, 2) if forest_rate and scrapy_rate else None,
        # The text board: 5-15 kB detail pages behind a sequential pager (bench/crawl_text.py).
        "forest_text_pages_per_s": rounded(text_rate),
        "scrapy_text_pages_per_s": rounded(scrapy_text_rate),
        "ratio_text_board": (
            rounded(text_rate / scrapy_text_rate, 2) if text_rate and scrapy_text_rate else None
        ),
        # The bare aiohttp + selectolax floor on the text board's pages, and Forest's share of it.
        "floor_text_pages_per_s": rounded(floor),
        "floor_text_cpu_s_per_1k_pages": rounded(floor_cpu, 3),
        "forest_text_share_of_floor": (
            rounded(text_rate / floor, 3) if text_rate and floor else None
        ),
        "forest_text_cpu_s_per_1k_pages": rounded(
            median(r.cpu_seconds * 1000 / r.pages for r in text_runs), 3
        ),
        "scrapy_text_cpu_s_per_1k_pages": rounded(
            median(r.cpu_seconds * 1000 / r.pages for r in scrapy_text_runs), 3
        ),
        "workers_per_crawl": args.workers,
        # What the quality counters cost: the same crawl without them (docs/quality.md).
        "quality_overhead_pct": (
            rounded((peer_rate / forest_rate - 1) * 100, 1) if peer_rate and forest_rate else None
        ),
        "forest_no_quality_pages_per_s": rounded(peer_rate),
        # The same in the worker's CPU per page, steadier than rates on a shared machine.
        "quality_overhead_cpu_pct": rounded(
            (median(r.cpu_seconds / r.pages for r in forest_runs) or 0)
            / (median(r.cpu_seconds / r.pages for r in peer_runs) or 1)
            * 100
            - 100
            if peer_runs
            else None,
            1,
        ),
        # What tracing costs: the same crawl with every span exported (docs/tracing.md).
        "tracing_overhead_pct": (
            rounded((forest_rate / traced_rate - 1) * 100, 1)
            if traced_rate and forest_rate
            else None
        ),
        "forest_traced_pages_per_s": rounded(traced_rate),
        "tracing_overhead_cpu_pct": rounded(
            (median(r.cpu_seconds / r.pages for r in traced_runs) or 0)
            / (median(r.cpu_seconds / r.pages for r in forest_runs) or 1)
            * 100
            - 100
            if traced_runs
            else None,
            1,
        ),
        "tracing_spans_exported": forest.sink.count if forest and forest.sink else None,
        # The same notices read from the board's JSON API (100 a page) vs its HTML pages (one
        # notice a detail page): per stored item, both persisted and published alike.
        "json_items_per_s": rounded(json_items_rate),
        "html_items_per_s": rounded(html_items_rate),
        "json_vs_html_per_item": (
            rounded(json_items_rate / html_items_rate, 2)
            if json_items_rate and html_items_rate
            else None
        ),
        "forest_json_cpu_s_per_1k_items": rounded(
            median(r.cpu_seconds * 1000 / r.items for r in json_runs), 3
        ),
        "pages": pages,
        "concurrency": concurrency,
        "forest_cpu_s_per_1k_pages": rounded(
            median(r.cpu_seconds * per_1k for r in forest_runs), 3
        ),
        "forest_peak_rss_mb": rounded(median(r.peak_rss_mb for r in forest_runs)),
        "forest_postgres_cpu_s_per_1k_pages": rounded(
            median(
                r.postgres_cpu_seconds * per_1k
                for r in forest_runs
                if r.postgres_cpu_seconds is not None
            ),
            3,
        ),
        "scrapy_cpu_s_per_1k_pages": rounded(
            median(r.cpu_seconds * per_1k for r in scrapy_runs), 3
        ),
        "scrapy_peak_rss_mb": rounded(median(r.peak_rss_mb for r in scrapy_runs)),
        "forest_wall_s": rounded(median(r.wall_seconds for r in forest_runs), 2),
        "scrapy_wall_s": rounded(median(r.wall_seconds for r in scrapy_runs), 2),
        "items": len(expected),
        "runs": args.runs,
        "batch_size": args.batch_size,
        "server": server.name,
        "server_rps": round(rps),
        **({"scrapy_settings": args.scrapy_setting} if args.scrapy_setting else {}),
    }


if __name__ == "__main__":
    raise SystemExit(main())
