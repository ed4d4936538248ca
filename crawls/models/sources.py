"""Sources, their crawls and a crawl's frontier."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import JSONField, Value
from django.db.models.functions import Lower
from django.utils import timezone

from crawls.models.workspaces import Workspace, WorkspaceOwned


class Source(WorkspaceOwned):
    """A site to crawl: where to start, what is in scope, how politely, what to extract, when."""

    class Kind(models.TextChoices):
        HTML = "html", "HTML board"
        JSON = "json", "JSON API"
        XML = "xml", "XML API"
        OCDS = "ocds", "OCDS feed"

    class OverlapPolicy(models.TextChoices):
        SKIP = "skip", "Skip the new crawl"
        QUEUE = "queue", "Queue it after the active one"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sources")
    name = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=4,
        choices=Kind.choices,
        default=Kind.HTML,
        help_text="What the source serves; its rules are of this kind (docs/sources.md).",
    )
    start_urls = ArrayField(models.TextField(), help_text="Where crawls begin (listing pages).")
    # Scope
    allowed_hosts = ArrayField(
        models.CharField(max_length=253),
        default=list,
        blank=True,
        help_text="Hosts links may lead to; empty means the hosts of the start URLs.",
    )
    max_depth = models.PositiveIntegerField(default=10)
    max_pages = models.PositiveIntegerField(default=10_000)
    include_patterns = ArrayField(models.TextField(), default=list, blank=True)
    exclude_patterns = ArrayField(models.TextField(), default=list, blank=True)
    # Politeness
    concurrency_per_host = models.PositiveSmallIntegerField(default=8)
    delay_seconds = models.FloatField(default=0.0, help_text="Pause between requests to a host.")
    obey_robots = models.BooleanField(default=True)
    user_agent = models.CharField(max_length=300, blank=True, help_text="Empty: Forest's own.")
    # Extraction
    rules = models.JSONField(help_text="Extraction rules (see docs/sources.md).")
    # Write-only: name -> value (a service key...), filled into requests as {secret.NAME} at
    # fetch time. Never serialised by the API, the admin, events or logs.
    secrets = models.JSONField(default=dict, blank=True, editable=False)
    # Run policy
    schedule_cron = models.CharField(
        max_length=100, blank=True, help_text="Five-field cron expression; empty: no schedule."
    )
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    overlap_policy = models.CharField(
        max_length=5, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    # Whether complete crawls mark the bids they no longer see removed (crawls.engine.presence).
    # Off for a source that lists only part of its notices each time (a date window, "since").
    track_removals = models.BooleanField(
        default=True,
        db_default=True,
        help_text="Mark bids removed when complete crawls no longer see them. Turn off for a "
        "source that lists only recent notices (an API queried by date window).",
    )
    # Overrides of the quality thresholds (settings.QUALITY_THRESHOLDS; docs/quality.md).
    quality_thresholds = models.JSONField(
        default=dict, blank=True, db_default=Value({}, JSONField())
    )
    retry_max = models.PositiveSmallIntegerField(default=2)
    retry_backoff_seconds = models.PositiveIntegerField(default=60)
    time_limit_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="source_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Crawl(WorkspaceOwned):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # Completed, but it extracted worse than the source's recent crawls (docs/quality.md).
        DEGRADED = "degraded", "Degraded"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.DEGRADED)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="crawls")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="crawls")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveSmallIntegerField(default=1)
    revivals = models.PositiveSmallIntegerField(
        default=0, help_text="Times the sweep re-enqueued it after its worker went silent."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Counters, updated once per batch
    pages_done = models.PositiveIntegerField(default=0)
    pages_failed = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0, help_text="URLs in the frontier.")
    items_new = models.PositiveIntegerField(default=0)
    items_changed = models.PositiveIntegerField(default=0)
    items_unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=dict, blank=True, help_text="Error count by class.")
    error = models.TextField(blank=True)
    event_seq = models.PositiveBigIntegerField(default=0, editable=False)
    # Extraction quality (crawls.engine.quality, docs/quality.md): counters gathered batch by
    # batch while the crawl runs, then the report it ended with (figures, medians, breaches).
    quality = models.JSONField(default=dict, blank=True, db_default=Value({}, JSONField()))
    # Links left out because the crawl reached max_pages or max_depth: such a crawl did not see
    # the whole board, so it marks no bid removed (crawls.engine.presence).
    capped = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="crawl_workspace_recent"),
            models.Index(fields=["source", "-id"], name="crawl_source_recent"),
            models.Index(
                fields=["heartbeat_at"],
                name="crawl_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
            # The subscribers' catch-up reads the crawls finished lately (crawls.subscribers).
            models.Index(fields=["finished_at"], name="crawl_finished"),
        ]

    def __str__(self) -> str:
        return f"Crawl {self.pk} of {self.source_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class FrontierUrl(WorkspaceOwned):
    """A URL a crawl visits: claimed in batches with a lease, so several workers share a crawl."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        LEASED = "leased", "Leased"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        LIST = "list", "Listing page"
        ITEM = "item", "Item page"

    crawl = models.ForeignKey(Crawl, on_delete=models.CASCADE, related_name="frontier")
    url = models.TextField()
    # The request's identity: method, canonical URL and body (a plain GET: the URL's hash).
    url_hash = models.BinaryField(max_length=16)
    # A request other than a plain GET of `url` (crawls.engine.request.Request.to_json()):
    # method, body, headers, pagination context. Secrets stay {secret.NAME} placeholders here.
    request = models.JSONField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=4, choices=Kind.choices, default=Kind.LIST)
    state = models.CharField(max_length=6, choices=State.choices, default=State.QUEUED)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["crawl", "url_hash"], name="frontier_unique_url"),
        ]
        indexes = [
            models.Index(fields=["crawl", "id"], name="frontier_crawl"),  # the API's listing
            models.Index(
                fields=["crawl", "id"], name="frontier_queued", condition=models.Q(state="queued")
            ),
            models.Index(
                fields=["crawl", "lease_expires_at"],
                name="frontier_leased",
                condition=models.Q(state="leased"),
            ),
        ]

    def __str__(self) -> str:
        return self.url
