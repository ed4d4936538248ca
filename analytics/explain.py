"""The queries `manage.py analytics_explain` and the bench look at: the analytics endpoints and
the bids list (crawls.api.bids), as the paths that run them."""

from __future__ import annotations

from urllib.parse import quote

from django.db.models import Count

from crawls.models import Bid

# (title, path, the table whose query is explained)
ANALYTICS_PATHS = (
    ("high-value", "/api/v1/analytics/high-value/?min_views=90000&min_amount=900000000",
     "crawls_bid"),
    ("bids-per-day by department", "/api/v1/analytics/bids-per-day/", "analytics_departmentday"),
    ("bids-per-day by source", "/api/v1/analytics/bids-per-day/?by=source",
     "analytics_departmentday"),
    ("top-departments", "/api/v1/analytics/top-departments/", "analytics_departmentday"),
    ("crawl-health", "/api/v1/analytics/crawl-health/", "crawls_crawl"),
)  # fmt: skip


def bid_list_paths(*, workspace_id: int) -> list[tuple[str, str, str]]:
    """The bids list: default ordering, -views, -amount, a department filter, a search."""
    department = (
        Bid.objects.in_workspace(workspace_id)
        .values("department")
        .annotate(n=Count("*"))
        .order_by("-n")
        .values_list("department", flat=True)
        .first()
    ) or ""
    base = "/api/v1/bids/?page_size=50"
    return [
        ("bids list (-post_date)", base, "crawls_bid"),
        ("bids list (-views)", f"{base}&ordering=-views", "crawls_bid"),
        ("bids list (-amount)", f"{base}&ordering=-amount", "crawls_bid"),
        ("bids list (department)", f"{base}&department={quote(department)}", "crawls_bid"),
        ("bids list (search)", f"{base}&search={quote('보수')}", "crawls_bid"),
    ]


def largest_workspace() -> int | None:
    row = Bid.objects.values("workspace_id").annotate(n=Count("*")).order_by("-n").first()
    return row["workspace_id"] if row else None
