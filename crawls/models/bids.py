"""Bids and their field-level revisions."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from crawls.models.sources import Crawl, Source
from crawls.models.workspaces import Workspace, WorkspaceOwned


class Bid(WorkspaceOwned):
    """A bid or tender notice, one per canonical URL (or API key) per source, kept current by
    crawls. Names follow OCDS where it has one (currency, status, procurement_method)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"
        AWARDED = "awarded", "Awarded"
        CLOSED = "closed", "Closed"
        UNKNOWN = "unknown", "Unknown"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="bids")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="bids")
    url = models.TextField()
    url_hash = models.BinaryField(max_length=16)
    title = models.TextField()
    department = models.CharField(max_length=300, blank=True)
    views = models.PositiveIntegerField(null=True, blank=True)
    post_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code of amount.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNKNOWN)
    procurement_method = models.CharField(
        max_length=100, blank=True, help_text="OCDS: open, selective, limited, direct, or as read."
    )
    classifications = ArrayField(
        models.CharField(max_length=120),
        default=list,
        blank=True,
        help_text='Classification codes as "SCHEME:ID" (for example CPV:45000000).',
    )
    extra = models.JSONField(default=dict, blank=True)
    # The publisher's version of the notice (OCDS: release date and id): an older one read
    # later is not applied over a newer one.
    version = models.CharField(max_length=100, blank=True)
    content_hash = models.CharField(max_length=32)
    etag = models.CharField(max_length=200, blank=True)
    last_modified = models.CharField(max_length=64, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # Presence (crawls.engine.presence): complete crawls in a row that did not see the bid, and
    # when it was marked removed (None: live).
    missed_crawls = models.PositiveSmallIntegerField(default=0, db_default=0)
    removed_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField()
    first_crawl = models.ForeignKey(
        Crawl, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_crawl = models.ForeignKey(
        Crawl, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-post_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "url_hash"], name="bid_unique_url"),
        ]
        indexes = [
            models.Index(
                F("workspace"),
                F("post_date").desc(nulls_last=True),
                F("id").desc(),
                name="bid_ws_post_date",
            ),
            models.Index(
                F("workspace"),
                F("views").desc(nulls_last=True),
                F("id").desc(),
                name="bid_ws_views",
            ),
            models.Index(
                F("workspace"),
                F("amount").desc(nulls_last=True),
                F("id").desc(),
                name="bid_ws_amount",
            ),
            models.Index(fields=["workspace", "changed_at"], name="bid_ws_changed_at"),
            models.Index(fields=["workspace", "department"], name="bid_ws_department"),
            models.Index(fields=["workspace", "status"], name="bid_ws_status"),
            GinIndex(fields=["classifications"], name="bid_classifications"),
            # Analytics (docs/query-plans.md): a department's bids by day (the read model's
            # per-key recompute, the department filter), and the last N days' bids index-only.
            models.Index(
                F("workspace"),
                F("department"),
                F("post_date").desc(nulls_last=True),
                F("id").desc(),
                name="bid_ws_dept_post_date",
            ),
            models.Index(
                fields=["workspace", "post_date"],
                include=["department", "views", "amount"],
                name="bid_ws_post_date_cover",
            ),
            # Substring search (ILIKE '%…%') on titles, Korean included.
            GinIndex(fields=["title"], opclasses=["gin_trgm_ops"], name="bid_title_trgm"),
            # Finding notices (docs/query-plans.md): deadline orderings, soonest or latest first
            # (two indexes: nulls last both ways), partial on a deadline, the nulls (by id) on
            # their own (pages read them apart: KeysetPagination.keyset_nulls_apart); and
            # `extra` key:value containment. The full-text and trigram indexes of `q` are on an
            # expression: migration 0008 (SQL).
            models.Index(
                F("workspace"),
                F("deadline").asc(nulls_last=True),
                F("id").asc(),
                name="bid_ws_deadline",
                condition=Q(deadline__isnull=False),
            ),
            models.Index(
                F("workspace"),
                F("deadline").desc(nulls_last=True),
                F("id").desc(),
                name="bid_ws_deadline_desc",
                condition=Q(deadline__isnull=False),
            ),
            models.Index(
                fields=["workspace", "id"],
                name="bid_ws_no_deadline",
                condition=Q(deadline__isnull=True),
            ),
            GinIndex(fields=["extra"], opclasses=["jsonb_path_ops"], name="bid_extra"),
            models.Index(
                fields=["workspace", "id"],
                name="bid_ws_removed",
                condition=Q(removed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class BidRevision(WorkspaceOwned):
    """Field-level history: which crawl changed which fields of a bid, old → new."""

    bid = models.ForeignKey(Bid, on_delete=models.CASCADE, related_name="revisions")
    crawl = models.ForeignKey(
        Crawl, null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    changes = models.JSONField(help_text='{"field": [old, new], …}')
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["bid", "-changed_at"], name="bidrevision_bid_recent")]

    def __str__(self) -> str:
        return f"{self.bid_id} changed {', '.join(self.changes)}"
