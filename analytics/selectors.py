"""Analytics reads, each scoped to one workspace (the caller's: adapters resolve it).

Windows are the last `days` days of posting, `today` included. Bids per day and top departments
read the read model (DepartmentDay); high-value bids read crawls_bid (their thresholds are
parameters) through the covering index bid_ws_post_date_cover; crawl health reads crawls_crawl.
Amounts are added up in one currency (settings.ANALYTICS_CURRENCY, or none named), never KRW to
USD; procurement_summary sums each currency apart and counts bids by status.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Max, Q, Sum

from analytics.models import DepartmentDay
from crawls.models import Bid

BY_DEPARTMENT = "department"
BY_SOURCE = "source"


def window_start(*, today: dt.date, days: int) -> dt.date:
    return today - dt.timedelta(days=days - 1)


def amount_counts() -> Q:
    """Bids whose amount analytics adds up: in settings.ANALYTICS_CURRENCY, or in no currency
    named (a board that prints its local money without saying which)."""
    return Q(currency__in=["", settings.ANALYTICS_CURRENCY])


def high_value_by_department(
    *,
    workspace_id: int,
    today: dt.date,
    days: int,
    min_views: int | None,
    min_amount: Decimal | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Per department, bids posted in the window with views > min_views or amount > min_amount;
    amounts (compared and summed) in ANALYTICS_CURRENCY only (see amount_counts)."""
    condition = Q()
    if min_views is not None:
        condition |= Q(views__gt=min_views)
    if min_amount is not None:
        condition |= Q(amount__gt=min_amount) & amount_counts()
    rows = (
        Bid.objects.in_workspace(workspace_id)
        .filter(post_date__gte=window_start(today=today, days=days), post_date__lte=today)
        .filter(condition)
        .values("department")
        .annotate(
            bids=Count("*"),
            total_amount=Sum("amount", filter=amount_counts()),
            max_views=Max("views"),
        )
        .order_by("-bids", "department")[:limit]
    )
    return list(rows)


def bids_per_day(
    *, workspace_id: int, today: dt.date, days: int, by: str, limit: int
) -> dict[str, Any]:
    """Bids posted per day in the window: the total, and a series per department or source.

    The `limit` keys with the most bids get a series; `days` lists every day (zeros included).
    """
    since = window_start(today=today, days=days)
    fields = ("source_id", "source__name") if by == BY_SOURCE else ("department",)
    rows = (
        DepartmentDay.objects.filter(workspace_id=workspace_id, day__gte=since, day__lte=today)
        .values("day", *fields)
        .annotate(bids=Sum("bid_count"))
        .order_by()
    )
    dates = [since + dt.timedelta(days=i) for i in range(days)]
    position = {day: i for i, day in enumerate(dates)}
    totals = [0] * days
    series: dict[object, dict[str, Any]] = {}
    for row in rows:
        key = row[fields[0]]
        entry = series.get(key)
        if entry is None:
            label = row["source__name"] if by == BY_SOURCE else key
            entry = series[key] = {"key": key, "label": label, "total": 0, "counts": [0] * days}
        entry["counts"][position[row["day"]]] += row["bids"]
        entry["total"] += row["bids"]
        totals[position[row["day"]]] += row["bids"]
    ranked = sorted(series.values(), key=lambda s: (-s["total"], str(s["label"])))[:limit]
    return {"by": by, "days": dates, "totals": totals, "series": ranked}


def top_departments(
    *, workspace_id: int, today: dt.date, days: int, limit: int
) -> list[dict[str, Any]]:
    """Departments by the total amount of their bids posted in the window, largest first."""
    rows = (
        DepartmentDay.objects.filter(
            workspace_id=workspace_id,
            day__gte=window_start(today=today, days=days),
            day__lte=today,
        )
        .values("department")
        .annotate(total_amount=Sum("total_amount"), bids=Sum("bid_count"))
        .order_by(F("total_amount").desc(nulls_last=True), "department")[:limit]
    )
    return [dict(row) for row in rows]


_PROCUREMENT = """
SELECT GROUPING(status) = 0 AS by_status, status, currency, count(*), sum(amount)
FROM crawls_bid
WHERE workspace_id = %(workspace)s AND post_date BETWEEN %(since)s AND %(until)s
GROUP BY GROUPING SETS ((status), (currency))
"""


def procurement_summary(*, workspace_id: int, today: dt.date, days: int) -> dict[str, Any]:
    """Bids posted in the window by status (every status, zeros included), and by currency with
    the total amount of each (no currency: ""), most bids first. One scan of the window."""
    since = window_start(today=today, days=days)
    with connection.cursor() as cursor:
        cursor.execute(_PROCUREMENT, {"workspace": workspace_id, "since": since, "until": today})
        rows = cursor.fetchall()
    statuses = dict.fromkeys(Bid.Status.values, 0)
    currencies = []
    for by_status, status, currency, bids, total in rows:
        if by_status:
            statuses[status] = bids
        else:
            currencies.append({"currency": currency, "bids": bids, "total_amount": total})
    currencies.sort(key=lambda row: (-row["bids"], row["currency"]))
    return {
        "by_status": [{"status": status, "bids": bids} for status, bids in statuses.items()],
        "by_currency": currencies,
    }


_CRAWL_HEALTH = """
SELECT s.id, s.name, a.crawls, a.succeeded, a.degraded, a.finished, a.pages, a.seconds, e.errors,
    last.finished_at
FROM crawls_source s
CROSS JOIN LATERAL (
    SELECT count(*) AS crawls,
        count(*) FILTER (WHERE c.status = 'succeeded') AS succeeded,
        -- degraded: completed but suspicious (docs/quality.md): finished, not a success
        count(*) FILTER (WHERE c.status = 'degraded') AS degraded,
        count(*) FILTER (WHERE c.status IN ('succeeded', 'failed', 'cancelled', 'degraded'))
            AS finished,
        coalesce(sum(c.pages_done + c.pages_failed) FILTER (WHERE c.finished_at IS NOT NULL
            AND c.started_at IS NOT NULL), 0) AS pages,
        coalesce(sum(extract(epoch FROM c.finished_at - c.started_at)), 0) AS seconds
    FROM crawls_crawl c WHERE c.source_id = s.id AND c.created_at >= %(since)s
) a
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_object_agg(x.key, x.n), '{}'::jsonb) AS errors FROM (
        SELECT err.key, sum(err.value::bigint) AS n
        FROM crawls_crawl c, jsonb_each_text(c.errors) err
        WHERE c.source_id = s.id AND c.created_at >= %(since)s AND c.errors <> '{}'::jsonb
        GROUP BY err.key
    ) x
) e
LEFT JOIN LATERAL (
    SELECT c.finished_at FROM crawls_crawl c
    WHERE c.source_id = s.id AND c.status = 'succeeded'
    ORDER BY c.id DESC LIMIT 1
) last ON true
WHERE s.workspace_id = %(workspace)s
ORDER BY lower(s.name), s.id
"""


def crawl_health(*, workspace_id: int, now: dt.datetime, days: int) -> list[dict[str, Any]]:
    """Per source: crawls created in the window, success rate, pages/s, error classes, and
    when its last successful crawl (ever) finished."""
    params: dict[str, int | dt.datetime] = {
        "workspace": workspace_id,
        "since": now - dt.timedelta(days=days),
    }
    with connection.cursor() as cursor:
        cursor.execute(_CRAWL_HEALTH, params)
        rows = cursor.fetchall()
    answer = []
    for (
        pk,
        name,
        crawls,
        succeeded,
        degraded,
        finished,
        pages,
        seconds,
        errors,
        last_success,
    ) in rows:
        errors = json.loads(errors) if isinstance(errors, str) else errors  # jsonb as text
        answer.append(
            {
                "source": pk,
                "source_name": name,
                "crawls": crawls,
                "succeeded": succeeded,
                "degraded": degraded,
                "finished": finished,
                "success_rate": round(succeeded / finished, 4) if finished else None,
                "pages_per_second": round(float(pages) / float(seconds), 2) if seconds else None,
                "errors": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
                "last_success_at": last_success,
            }
        )
    return answer
