"""A crawl's event log and how far each subscriber got in it (crawls.subscribers)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from crawls.models.sources import Crawl
from crawls.models.workspaces import WorkspaceOwned


class CrawlEvent(WorkspaceOwned):
    """Append-only progress log of a crawl; `sequence` is monotonic per crawl."""

    crawl = models.ForeignKey(Crawl, on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveBigIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["crawl_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["crawl", "sequence"], name="crawlevent_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.crawl_id}#{self.sequence} {self.type}"


class SubscriberCursor(models.Model):
    """How far one crawl-event subscriber got in one crawl's log (crawls.subscribers): the
    events after `position` are delivered to it again until it takes them."""

    subscriber = models.CharField(max_length=200, help_text="Its dotted path in settings.")
    crawl = models.ForeignKey(Crawl, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveBigIntegerField(default=0, help_text="Last sequence taken.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "crawl"], name="subscribercursor_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} at {self.crawl_id}#{self.position}"
