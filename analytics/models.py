"""The analytics read model: bids counted per (workspace, source, department, day of posting).

Derived data only: kept current from crawl events (analytics.services) and rebuildable from the
bids (`manage.py analytics_rebuild`). Bids without a post date are not counted.
"""

from __future__ import annotations

from django.db import models

from crawls.models import Source, Workspace


class DepartmentDay(models.Model):
    """One department's bids of one source posted on one day."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    department = models.CharField(max_length=300, blank=True)
    day = models.DateField()
    bid_count = models.PositiveIntegerField()
    # Amounts in settings.ANALYTICS_CURRENCY or with no currency (never KRW added to USD).
    total_amount = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    max_views = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["workspace_id", "-day", "department"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "source", "department", "day"], name="departmentday_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "day"],
                include=["source", "department", "bid_count", "total_amount"],
                name="departmentday_ws_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.department or '—'} {self.day}: {self.bid_count}"
