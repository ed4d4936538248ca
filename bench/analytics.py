"""Analytics benchmark: each /api/v1/analytics/ endpoint at 1,000,000 bids, cold, beside naive.

Forest: the endpoints as served (bearer token, throttles counting, workspace scoping) with the
cache off (ANALYTICS_CACHE_SECONDS=0), measured in-process through Django's test client: p95 of
--requests requests each, after a warm-up. Naive: the same endpoints with the four analytics
selectors replaced by what a DRF user would write (bench/analytics_naive.py: ORM aggregates over
crawls_bid and crawls_crawl, no read model, default planner settings, the same indexes), the
same number of requests, interleaved with Forest's, in the same run on the same database. Both
sides must give the same answers (checked; the bench fails if they differ). Ends by printing
one JSON line: {"p95_ms": {endpoint: ms}, "naive_p95_ms": {endpoint: ms}, "p50_ms": ...}.

    make bench-analytics                  # or: .venv/bin/python -m bench.analytics --reuse
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from decimal import Decimal
from unittest import mock

import psycopg

from bench.common import bids_database, log

DATABASE = "forest_bench_analytics"
SOURCES = 4
DEPARTMENTS = 24
# 1,000,000 bids over 10 years of post dates, 4 sources, 24 departments.
LOAD_SQL = """
INSERT INTO crawls_bid (
    workspace_id, source_id, url, url_hash, title, department, views, post_date, amount,
    deadline, reference, extra, content_hash, etag, last_modified, first_seen_at, last_seen_at,
    changed_at)
SELECT %(workspace)s, (%(sources)s::bigint[])[1 + (i / 7) %% 4],
    'https://example.org/notices/' || i,
    decode(md5('https://example.org/notices/' || i), 'hex'),
    (ARRAY['[입찰] 도로 보수공사 ', 'Tender: office equipment ', '[긴급] 하수관로 정비공사 ',
           'Supply of LED street lighting '])[1 + i %% 4] || i,
    (ARRAY['서울특별시 도시기반시설본부', 'Busan Port Authority', '조달청 시설사업국',
           'Korea Expressway Corporation', '경기도교육청 재무과', 'Korea Rail Network Authority',
           '부산광역시 건설본부', 'Jeju Special Self-Governing Province'])[1 + i %% 8]
        || ' ' || (i %% 3),
    CASE WHEN i %% 50 = 0 THEN NULL ELSE ((i::bigint * 7919) %% 100000)::int END,
    DATE '2026-11-23' - (i %% 3650),
    CASE WHEN i %% 20 = 0 THEN NULL ELSE ((i::bigint * 104729) %% 1000000000)::numeric END,
    TIMESTAMPTZ '2026-12-31 18:00+09' - (i %% 365) * interval '1 day',
    'R' || lpad(i::text, 10, '0'),
    '{}'::jsonb, md5(i::text), '', '', now(), now(), now()
FROM generate_series(1, %(rows)s) AS i
"""
# A year of hourly crawls per source: statuses, timings and error classes.
CRAWLS_SQL = """
INSERT INTO crawls_crawl (
    workspace_id, source_id, status, cancel_requested, attempt, revivals, pages_done, pages_failed,
    pages_total, items_new, items_changed, items_unchanged, errors, error, event_seq,
    created_at, started_at, finished_at)
SELECT %(workspace)s, s.id,
    (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled'])[1 + h %% 5],
    false, 1, 0, 50 + h %% 40, h %% 3, 60, 0, h %% 7, 50,
    CASE WHEN h %% 3 = 0 THEN '{"TimeoutError": 2, "HTTP 503": 1}'::jsonb
         WHEN h %% 3 = 1 THEN '{"ConnectError": 1}'::jsonb ELSE '{}'::jsonb END,
    '', 0,
    now() - h * interval '1 hour', now() - h * interval '1 hour',
    now() - h * interval '1 hour' + (20 + h %% 30) * interval '1 second'
FROM crawls_source s, generate_series(1, %(hours)s) AS h
WHERE s.workspace_id = %(workspace)s
"""
ENDPOINTS = {
    "high_value": "/api/v1/analytics/high-value/?min_views=90000&min_amount=900000000",
    "high_value_365d": "/api/v1/analytics/high-value/?days=365&min_views=99000",
    "bids_per_day": "/api/v1/analytics/bids-per-day/",
    "bids_per_day_source_365d": "/api/v1/analytics/bids-per-day/?by=source&days=365",
    "top_departments": "/api/v1/analytics/top-departments/",
    "top_departments_365d": "/api/v1/analytics/top-departments/?days=365",
    "crawl_health": "/api/v1/analytics/crawl-health/",
}
WARMUP = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=8760, help="crawls per source (hourly)")
    parser.add_argument(
        "--requests", type=int, default=60, help="timed requests per endpoint, each side"
    )
    parser.add_argument("--reuse", action="store_true", help="keep and reuse the loaded database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {
        "API_RATE_CALLER": "100000000/min",
        "API_RATE_WORKSPACE": "100000000/min",
        "ANALYTICS_CACHE_SECONDS": "0",  # cold: every request computes its answer
    }
    with bids_database(
        DATABASE, rows=args.rows, reuse=args.reuse, settings_module="project.settings", env=env
    ) as loaded:
        figures = _bench(args, loaded=loaded)
    print(json.dumps(figures))
    return 0


def _setup(args, *, loaded: bool):
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - after django.setup()

    from analytics import services as analytics_services  # noqa: PLC0415 - after django.setup()
    from crawls import services  # noqa: PLC0415 - after django.setup()
    from crawls.models import ApiToken, Source, Workspace  # noqa: PLC0415 - after django.setup()

    user, _ = get_user_model().objects.get_or_create(username="bench")
    workspace = Workspace.objects.filter(slug="bench").first() or services.workspace_create(
        owner=user, name="bench"
    )
    ApiToken.objects.filter(user=user).delete()
    _, raw = services.token_create(user=user, workspace=workspace, name="bench")
    sources = list(Source.objects.filter(workspace=workspace).order_by("id"))
    sources += [
        services.source_create(
            workspace=workspace,
            name=f"bench {n + 1}",
            start_urls=[f"https://example.org/board{n + 1}/notices"],
            rules={"items": ["a"], "fields": {"title": "h1"}},
        )
        for n in range(len(sources), SOURCES)
    ]
    if not loaded:
        started = time.perf_counter()
        params = {
            "workspace": workspace.pk,
            "sources": [s.pk for s in sources],
            "rows": args.rows,
            "hours": args.hours,
        }
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(LOAD_SQL, params)
            conn.execute(CRAWLS_SQL, params)
        log(f"loaded {args.rows:,} bids in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        rows = analytics_services.summary_rebuild(workspace_ids=[workspace.pk])
        log(f"analytics_rebuild: {rows:,} rows in {time.perf_counter() - started:.1f} s")
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            # The visibility map, for index-only scans (autovacuum would get there later).
            conn.execute("VACUUM ANALYZE crawls_bid")
            conn.execute("VACUUM ANALYZE crawls_crawl")
            conn.execute("VACUUM ANALYZE analytics_departmentday")
    return workspace, raw


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 2)


def _get(client, path: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return elapsed, response.json()


def _bench(args, *, loaded: bool) -> dict:
    from django.test import Client  # noqa: PLC0415 - after django.setup()

    from analytics import selectors  # noqa: PLC0415 - after django.setup()
    from bench import analytics_naive  # noqa: PLC0415 - after django.setup()

    logging.getLogger("forest.access").setLevel(logging.WARNING)  # one line per request
    workspace, raw = _setup(args, loaded=loaded)
    _check_selectors(selectors, analytics_naive.SELECTORS, workspace_id=workspace.pk)
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {raw}")
    naive_selectors = mock.patch.multiple(selectors, **analytics_naive.SELECTORS)
    forest: dict[str, float] = {}
    naive: dict[str, float] = {}
    medians: dict[str, dict[str, float]] = {"forest": {}, "naive": {}}
    for name, path in ENDPOINTS.items():
        # Interleaved, request by request: both sides see the same noise of a shared machine.
        forest_times: list[float] = []
        naive_times: list[float] = []
        for sample in range(WARMUP + args.requests):
            elapsed, forest_answer = _get(client, path)
            if sample >= WARMUP:
                forest_times.append(elapsed)
            with naive_selectors:
                elapsed, naive_answer = _get(client, path)
            if sample >= WARMUP:
                naive_times.append(elapsed)
        if name != "crawl_health":  # its window ends at now(): compared in _check_selectors
            _same(name, forest_answer, naive_answer)
        forest[name], naive[name] = _p95(forest_times), _p95(naive_times)
        medians["forest"][name] = round(statistics.median(forest_times), 2)
        medians["naive"][name] = round(statistics.median(naive_times), 2)
        log(
            f"{name}: forest p50 {statistics.median(forest_times):.1f} ms p95 {forest[name]} ms;"
            f" naive p50 {statistics.median(naive_times):.1f} ms p95 {naive[name]} ms"
        )
    return {
        "p95_ms": forest,
        "naive_p95_ms": naive,
        "p50_ms": medians["forest"],
        "naive_p50_ms": medians["naive"],
        "rows": args.rows,
        "requests": args.requests,
        "naive_requests": args.requests,
        "measured": "in-process, Django test client, bearer token, cache off, interleaved",
    }


def _same(name: str, forest, naive) -> None:
    if forest != naive:
        raise SystemExit(
            f"bench-analytics: the naive answer of {name} differs from Forest's:\n"
            f"forest: {json.dumps(forest, default=str)[:2000]}\n"
            f"naive:  {json.dumps(naive, default=str)[:2000]}"
        )


def _check_selectors(selectors, naive: dict, *, workspace_id: int) -> None:
    """Both sides' selectors, called with the same arguments (crawl health's window ends at a
    fixed `now`), must give the same answers, through the endpoints' serializers."""
    from django.utils import timezone  # noqa: PLC0415 - after django.setup()

    from analytics.api import serializers  # noqa: PLC0415 - after django.setup()

    today, now = timezone.localdate(), timezone.now()
    calls = {
        "high_value_by_department": (
            {"days": 365, "min_views": 90000, "min_amount": Decimal(900000000), "limit": 10},
            serializers.HighValueRowSerializer(many=True),
        ),
        "bids_per_day": ({"days": 365, "by": "source", "limit": 10}, None),
        "top_departments": (
            {"days": 365, "limit": 10},
            serializers.DepartmentRowSerializer(many=True),
        ),
        "crawl_health": ({"days": 30}, serializers.SourceHealthSerializer(many=True)),
    }
    for name, (params, serializer) in calls.items():
        when = {"now": now} if name == "crawl_health" else {"today": today}
        answers = [
            function(workspace_id=workspace_id, **when, **params)
            for function in (getattr(selectors, name), naive[name])
        ]
        if serializer is not None:
            answers = [serializer.to_representation(answer) for answer in answers]
        _same(name, *answers)


if __name__ == "__main__":
    raise SystemExit(main())
