"""The naive side of bench/analytics.py: what a DRF user would write without a read model.

ORM aggregates (values().annotate(Count/Sum)) over crawls_bid and crawls_crawl, default planner
settings, the tables' indexes as they are (the same tables Forest reads). Each function takes
the arguments of the analytics selector it stands in for and returns the same answer. Imported
after django.setup().
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from django.conf import settings
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Lower

from crawls.models import Bid, Crawl, Source


def high_value_by_department(*, workspace_id, today, days, min_views, min_amount, limit):
    since = today - dt.timedelta(days=days - 1)
    condition = Q()
    if min_views is not None:
        condition |= Q(views__gt=min_views)
    counted = Q(currency__in=["", settings.ANALYTICS_CURRENCY])  # amounts of one currency
    if min_amount is not None:
        condition |= Q(amount__gt=min_amount) & counted
    return list(
        Bid.objects.filter(workspace_id=workspace_id, post_date__range=(since, today))
        .filter(condition)
        .values("department")
        .annotate(
            bids=Count("id"), total_amount=Sum("amount", filter=counted), max_views=Max("views")
        )
        .order_by("-bids", "department")[:limit]
    )


def bids_per_day(*, workspace_id, today, days, by, limit):
    since = today - dt.timedelta(days=days - 1)
    fields = ("source_id", "source__name") if by == "source" else ("department",)
    rows = (
        Bid.objects.filter(workspace_id=workspace_id, post_date__range=(since, today))
        .values("post_date", *fields)
        .annotate(bids=Count("id"))
        .order_by()
    )
    dates = [since + dt.timedelta(days=i) for i in range(days)]
    position = {day: i for i, day in enumerate(dates)}
    totals = [0] * days
    series: dict = {}
    for row in rows:
        key = row[fields[0]]
        label = row["source__name"] if by == "source" else key
        entry = series.setdefault(
            key, {"key": key, "label": label, "total": 0, "counts": [0] * days}
        )
        entry["counts"][position[row["post_date"]]] += row["bids"]
        entry["total"] += row["bids"]
        totals[position[row["post_date"]]] += row["bids"]
    ranked = sorted(series.values(), key=lambda s: (-s["total"], str(s["label"])))[:limit]
    return {"by": by, "days": dates, "totals": totals, "series": ranked}


def top_departments(*, workspace_id, today, days, limit):
    since = today - dt.timedelta(days=days - 1)
    return list(
        Bid.objects.filter(workspace_id=workspace_id, post_date__range=(since, today))
        .values("department")
        .annotate(
            total_amount=Sum("amount", filter=Q(currency__in=["", settings.ANALYTICS_CURRENCY])),
            bids=Count("id"),
        )
        .order_by(F("total_amount").desc(nulls_last=True), "department")[:limit]
    )


def crawl_health(*, workspace_id, now, days):
    crawls = Crawl.objects.filter(
        source__workspace_id=workspace_id, created_at__gte=now - dt.timedelta(days=days)
    )
    both_times = Q(finished_at__isnull=False, started_at__isnull=False)
    totals = {
        row["source_id"]: row
        for row in crawls.values("source_id").annotate(
            crawls=Count("id"),
            succeeded=Count("id", filter=Q(status=Crawl.Status.SUCCEEDED)),
            degraded=Count("id", filter=Q(status=Crawl.Status.DEGRADED)),
            finished=Count("id", filter=Q(status__in=Crawl.FINISHED)),
            pages=Sum(F("pages_done") + F("pages_failed"), filter=both_times),
            duration=Sum(F("finished_at") - F("started_at")),
        )
    }
    errors: dict[int, Counter] = defaultdict(Counter)
    for source_id, counts in crawls.exclude(errors={}).values_list("source_id", "errors"):
        errors[source_id].update(counts)
    last_success = (
        Crawl.objects.filter(source=OuterRef("pk"), status=Crawl.Status.SUCCEEDED)
        .order_by("-id")
        .values("finished_at")[:1]
    )
    sources = (
        Source.objects.filter(workspace_id=workspace_id)
        .annotate(last_success_at=Subquery(last_success))
        .order_by(Lower("name"), "id")
    )
    answer = []
    for source in sources:
        row = totals.get(source.pk, {})
        finished = row.get("finished", 0)
        seconds = row["duration"].total_seconds() if row.get("duration") else 0
        answer.append(
            {
                "source": source.pk,
                "source_name": source.name,
                "crawls": row.get("crawls", 0),
                "succeeded": row.get("succeeded", 0),
                "degraded": row.get("degraded", 0),
                "finished": finished,
                "success_rate": round(row["succeeded"] / finished, 4) if finished else None,
                "pages_per_second": round((row["pages"] or 0) / seconds, 2) if seconds else None,
                "errors": dict(sorted(errors[source.pk].items(), key=lambda kv: (-kv[1], kv[0]))),
                "last_success_at": source.last_success_at,
            }
        )
    return answer


SELECTORS = {
    "high_value_by_department": high_value_by_department,
    "bids_per_day": bids_per_day,
    "top_departments": top_departments,
    "crawl_health": crawl_health,
}
