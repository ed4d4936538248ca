"""The analytics dashboard page: four answers of the current workspace, as SVG charts and tables.

Parameters come from a GET form validated like the API's (a bad one: the page with the error,
status 400). Answers come through the same cache as the API's.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics import cache, charts, selectors
from analytics.api import serializers as s
from crawls.views import place_of, render_page


class PageParams(s.HighValueParams, s.BidsPerDayParams):
    """Every parameter of the page (the API's, with thresholds by default)."""

    def validate(self, attrs):
        return attrs


DEFAULTS = {"min_views": "1000", "min_amount": "100000000"}


def _answers(workspace_id: int, params: dict) -> dict:
    today = timezone.localdate()
    days, limit = params["days"], params["limit"]
    window = {"workspace_id": workspace_id, "today": today, "days": days}

    def get(name: str, compute, **extra):
        key = {"days": days, "limit": limit, "today": today, **extra}
        return cache.cached(workspace_id=workspace_id, name=f"page-{name}", params=key,
                            compute=compute)  # fmt: skip

    thresholds = {"min_views": params.get("min_views"), "min_amount": params.get("min_amount")}
    high = get(
        "high-value",
        lambda: selectors.high_value_by_department(**window, limit=limit, **thresholds),
        **thresholds,
    )
    per_day = get(
        "bids-per-day",
        lambda: selectors.bids_per_day(**window, by=params["by"], limit=limit),
        by=params["by"],
    )
    top = get("top-departments", lambda: selectors.top_departments(**window, limit=limit))
    health = get(
        "crawl-health",
        lambda: selectors.crawl_health(workspace_id=workspace_id, now=timezone.now(), days=days),
    )
    procurement = get("procurement", lambda: selectors.procurement_summary(**window), limit=None)
    return {
        "since": selectors.window_start(today=today, days=days),
        "currency": settings.ANALYTICS_CURRENCY,
        "procurement": procurement,
        "until": today,
        "high": high,
        "high_chart": charts.bars([(r["department"], r["bids"]) for r in high]),
        "per_day": per_day,
        "per_day_rows": list(zip(per_day["days"], per_day["totals"], strict=True)),
        "per_day_chart": charts.line(per_day["days"], per_day["totals"]),
        "top": top,
        "top_chart": charts.bars([(r["department"], r["total_amount"]) for r in top]),
        "health": health,
    }


@login_required
@require_GET
def dashboard(request):
    place = place_of(request)
    given = {name: value for name, value in request.GET.items() if value != ""}
    data = {**DEFAULTS, **given}  # a blank field: its default
    form = PageParams(data=data)
    context = {"params": data}
    if place.current is None:
        return render_page(request, "analytics/dashboard.html", place, context)
    if not form.is_valid():
        context["errors"] = form.errors
        return render_page(request, "analytics/dashboard.html", place, context, status=400)
    context.update(_answers(place.current.workspace_id, form.validated_data))
    return render_page(request, "analytics/dashboard.html", place, context)
