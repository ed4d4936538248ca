"""Reminder job benchmark: notifications.reminders_send over 1,000,000 bids with 100 rules.

1,000,000 bids over 4 workspaces (deadlines spread over two years around now, 5% cancelled, 2%
removed, 2% without a deadline), 100 rules (no filter, departments, statuses, a least amount,
title words; remind_days 1 to 14). The first run records every deadline already within reach
(`first_run_s`); then --runs runs, each 15 minutes after the last (what beat does: only the bids
whose deadline came within reach since are new), timed: `reminders_s` is their median. Naive: the
same job as an ORM loop per rule over the bids whose deadline is in the window, the filter,
removed and cancelled evaluated in Python, get_or_create per bid; its runs interleave with
Forest's (its own 15-minute slices), on the same database. Both sides must record the same
reminders for the same slice (checked). Prints one JSON line:
{"reminders_s": ..., "naive_s": ..., "ratio": ..., "first_run_s": ..., ...}.

    make bench-reminders                  # or: .venv/bin/python -m bench.reminders --reuse
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from decimal import Decimal

import psycopg

from bench.common import bids_database, log

DATABASE = "forest_bench_reminders"
WORKSPACES = 4
DEPARTMENTS = [
    "서울특별시 도시기반시설본부", "Busan Port Authority", "조달청 시설사업국",
    "Korea Expressway Corporation", "경기도교육청 재무과", "Korea Rail Network Authority",
    "부산광역시 건설본부", "Jeju Special Self-Governing Province",
]  # fmt: skip
# Deadlines every ~63 s over two years around the load's `now`; i spreads over the workspaces.
LOAD_SQL = """
INSERT INTO crawls_bid (
    workspace_id, source_id, url, url_hash, title, department, views, post_date, amount,
    deadline, reference, currency, status, procurement_method, classifications, extra, version,
    content_hash, etag, last_modified, first_seen_at, last_seen_at, changed_at, removed_at,
    missed_crawls)
SELECT (%(workspaces)s::bigint[])[1 + i %% 4], (%(sources)s::bigint[])[1 + i %% 4],
    'https://example.org/notices/' || i,
    decode(md5('https://example.org/notices/' || i), 'hex'),
    (ARRAY['[입찰] 도로 보수공사 ', 'Tender: office equipment ', '[긴급] 하수관로 정비공사 ',
           'Supply of LED street lighting ', 'Road resurfacing works '])[1 + i %% 5] || i,
    (%(departments)s::text[])[1 + (i / 4) %% 8],
    NULL, NULL,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE ((i::bigint * 104729) %% 1000000000)::numeric END,
    CASE WHEN i %% 50 = 7 THEN NULL
         ELSE %(now)s::timestamptz - interval '365 days'
              + ((i::bigint * 7919) %% %(rows)s) * (interval '730 days' / %(rows)s) END,
    'R' || i, 'KRW',
    CASE WHEN i %% 20 = 3 THEN 'cancelled' WHEN i %% 3 = 0 THEN 'unknown' ELSE 'active' END,
    '', '{}', '{}'::jsonb, '', md5(i::text), '', '', now(), now(), now(),
    CASE WHEN i %% 50 = 11 THEN now() END, 0
FROM generate_series(1, %(rows)s) AS i
"""
SLICE = dt.timedelta(minutes=15)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5, help="timed runs, each side")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse the loaded database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with bids_database(
        DATABASE, rows=args.rows, reuse=args.reuse, settings_module="project.settings", env={}
    ) as loaded:
        figures = _bench(args, loaded=loaded)
    print(json.dumps(figures))
    return 0


def rule_filters(n: int) -> dict:
    """Mixed filters, as people save them."""
    kind = n % 5
    if kind == 0:
        return {}
    if kind == 1:
        return {"department": [DEPARTMENTS[n % 8], DEPARTMENTS[(n + 3) % 8]]}
    if kind == 2:
        return {"status": ["active"]}
    if kind == 3:
        return {"amount_min": str(100_000_000 * (1 + n % 5))}
    return {"search": ["도로", "LED", "하수관로", "Road"][n % 4]}


def _setup(args, *, loaded: bool):
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - after django.setup()

    from crawls import services  # noqa: PLC0415 - after django.setup()
    from crawls.models import Source, Workspace  # noqa: PLC0415 - after django.setup()
    from notifications import services as notify  # noqa: PLC0415 - after django.setup()
    from notifications.models import (  # noqa: PLC0415 - after django.setup()
        AlertRule,
        Notification,
        Reminder,
    )

    user, _ = get_user_model().objects.get_or_create(username="bench")
    workspaces = list(Workspace.objects.filter(slug__startswith="bench").order_by("id"))
    workspaces += [
        services.workspace_create(owner=user, name=f"bench {n + 1}")
        for n in range(len(workspaces), WORKSPACES)
    ]
    sources = [
        Source.objects.filter(workspace=w).first()
        or services.source_create(
            workspace=w,
            name="board",
            start_urls=[f"https://example.org/board{w.pk}/notices"],
            rules={"items": ["a"], "fields": {"title": "h1"}},
        )
        for w in workspaces
    ]
    now = _now()
    if not loaded:
        started = time.perf_counter()
        params = {
            "workspaces": [w.pk for w in workspaces],
            "sources": [s.pk for s in sources],
            "departments": DEPARTMENTS,
            "rows": args.rows,
            "now": now,
        }
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(LOAD_SQL, params)
            conn.execute("VACUUM ANALYZE crawls_bid")
        log(f"loaded {args.rows:,} bids in {time.perf_counter() - started:.1f} s")
    Reminder.objects.all().delete()
    AlertRule.objects.all().delete()
    Notification.objects.filter(kind=Notification.Kind.REMINDER).delete()
    rules = [
        notify.alert_rule_create(
            workspace_id=workspaces[n % WORKSPACES].pk,
            owner=user,
            name=f"rule {n}",
            filter=rule_filters(n),
            remind_days=1 + n % 14,
        )
        for n in range(args.rules)
    ]
    return rules, now


def _now() -> dt.datetime:
    """The load's `now`, fixed (a reused database keeps its deadlines): today 00:00 UTC."""
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)


def _bench(args, *, loaded: bool) -> dict:
    from django.db import connection  # noqa: PLC0415 - after django.setup()

    from notifications import reminders  # noqa: PLC0415 - after django.setup()
    from notifications.models import Reminder  # noqa: PLC0415 - after django.setup()

    rules, now = _setup(args, loaded=loaded)
    plan = _explain(reminders, rules, now=now, connection=connection)
    started = time.perf_counter()
    first = reminders.reminders_send(now=now)
    first_run_s = time.perf_counter() - started
    first_reminders = Reminder.objects.count()
    log(f"first run: {first_reminders:,} reminders, {len(first)} notices, {first_run_s:.2f} s")
    forest_times, naive_times, inserted = [], [], {"forest": [], "naive": []}
    for run in range(args.runs):
        when = now + (2 * run + 1) * SLICE
        before = Reminder.objects.count()
        started = time.perf_counter()
        reminders.reminders_send(now=when)
        forest_times.append(time.perf_counter() - started)
        inserted["forest"].append(Reminder.objects.count() - before)
        expected = _expected(reminders, rules, now=when + SLICE, connection=connection)
        before = Reminder.objects.count()
        started = time.perf_counter()
        _naive(rules, now=when + SLICE)
        naive_times.append(time.perf_counter() - started)
        inserted["naive"].append(Reminder.objects.count() - before)
        _check_same(expected, now=when + SLICE)
        log(
            f"run {run + 1}: forest {forest_times[-1]:.3f} s (+{inserted['forest'][-1]}), "
            f"naive {naive_times[-1]:.3f} s (+{inserted['naive'][-1]})"
        )
    forest, naive = statistics.median(forest_times), statistics.median(naive_times)
    return {
        "reminders_s": round(forest, 3),
        "naive_s": round(naive, 3),
        "ratio": round(naive / forest, 1),
        "first_run_s": round(first_run_s, 3),
        "first_run_reminders": first_reminders,
        "first_run_notifications": len(first),
        "inserted_per_run": inserted,
        "rows": args.rows,
        "rules": len(rules),
        "runs": args.runs,
        "plan": plan,
        "measured": "in-process; 15-minute slices after a first run; median of runs, each side",
    }


def _explain(reminders, rules, *, now, connection) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one rule's statement (rolled back), for query-plans.md."""
    from django.db import transaction  # noqa: PLC0415 - after django.setup()

    rule = next(r for r in rules if r.filter == {}) if rules else None
    if rule is None:
        return []
    sql, params = reminders.reminder_statement(rule=rule, now=now)
    lines: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    log("\n".join(lines))
    return lines


class _Rollback(Exception):  # a control-flow signal: roll the EXPLAIN ANALYZE back
    pass


def _expected(reminders, rules, *, now, connection) -> set[tuple[int, int, dt.datetime]]:
    """What Forest's statements would insert at `now` (their SELECT, nothing written)."""
    from notifications.models import Reminder  # noqa: PLC0415 - after django.setup()

    done = set(Reminder.objects.values_list("rule_id", "bid_id", "deadline"))
    wanted = set()
    for rule in rules:
        sql, params = reminders.reminder_statement(rule=rule, now=now)
        select = sql[sql.index("FROM (") + len("FROM (") : sql.rindex(") AS m(id, deadline)")]
        with connection.cursor() as cursor:
            cursor.execute(select, params[2:])
            wanted.update((rule.pk, pk, deadline) for pk, deadline in cursor.fetchall())
    return wanted - done


def _check_same(expected, *, now) -> None:
    from notifications.models import Reminder  # noqa: PLC0415 - after django.setup()

    made = set(Reminder.objects.filter(created_at=now).values_list("rule_id", "bid_id", "deadline"))
    if made != expected:
        raise SystemExit(
            f"bench-reminders: the naive job recorded {len(made)} reminders, Forest's statements "
            f"select {len(expected)} ({len(made ^ expected)} differ)"
        )


def _matches(rule, bid) -> bool:
    """The bench's filters, evaluated in Python (the naive side)."""
    saved = rule.filter
    if "department" in saved and bid.department not in saved["department"]:
        return False
    if "status" in saved and bid.status not in saved["status"]:
        return False
    if "amount_min" in saved and (bid.amount is None or bid.amount < Decimal(saved["amount_min"])):
        return False
    return "search" not in saved or saved["search"].casefold() in bid.title.casefold()


def _naive(rules, *, now) -> None:
    """The reminder job as an ORM loop per rule: the window in the query, the rest in Python."""
    from crawls.models import Bid  # noqa: PLC0415 - after django.setup()
    from notifications.models import Reminder  # noqa: PLC0415 - after django.setup()

    for rule in rules:
        window = Bid.objects.filter(
            workspace_id=rule.workspace_id,
            deadline__gte=now,
            deadline__lte=now + dt.timedelta(days=rule.remind_days),
        ).only("id", "title", "department", "status", "amount", "deadline", "removed_at")
        for bid in window.iterator(chunk_size=2000):
            if bid.removed_at is not None or bid.status == Bid.Status.CANCELLED:
                continue
            if _matches(rule, bid):
                Reminder.objects.get_or_create(
                    rule=rule, bid=bid, deadline=bid.deadline, defaults={"created_at": now}
                )


if __name__ == "__main__":
    raise SystemExit(main())
