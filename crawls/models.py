"""Crawls models. Tenancy first: every domain row belongs to a Workspace, and every read of such
rows goes through WorkspaceScopedQuerySet (`visible_to(user)` / `in_workspace(workspace)`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, JSONField, Q, Value
from django.db.models.functions import Lower
from django.utils import timezone


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, allow_unicode=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = [Lower("name"), "id"]

    def __str__(self) -> str:
        return self.name


class WorkspaceScopedQuerySet(models.QuerySet):
    """The one scoping mechanism: reads of workspace-owned rows filter through here."""

    def in_workspace(self, workspace: Workspace | int) -> WorkspaceScopedQuerySet:
        return self.filter(workspace=workspace)

    def visible_to(self, user, *, roles: list[str] | None = None) -> WorkspaceScopedQuerySet:
        """Rows of the workspaces where `user` is a member (with one of `roles`, if given)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        memberships = Membership.objects.filter(user=user)
        if roles is not None:
            memberships = memberships.filter(role__in=roles)
        return self.filter(workspace_id__in=memberships.values("workspace_id"))


class WorkspaceOwned(models.Model):
    """Base of every domain model: the row carries its workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)

    objects = WorkspaceScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(WorkspaceOwned):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["workspace_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    # Roles that may change a workspace's data; viewers only read.
    WRITER_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER)
    # Roles that may manage the workspace itself (members, tokens, settings).
    MANAGER_ROLES = (Role.OWNER, Role.ADMIN)

    @property
    def can_write(self) -> bool:
        return self.role in self.WRITER_ROLES

    @property
    def can_manage(self) -> bool:
        return self.role in self.MANAGER_ROLES


# --- Sources, crawls, the frontier, bids and the event log ---------------------------------------


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


class ApiToken(WorkspaceOwned):
    """A bearer token of one user in one workspace: shown once, stored hashed, revocable."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, help_text="Identifies the token.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole token.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- Imports (i15-import; docs/imports.md) ------------------------------------------------------


class ImportJob(WorkspaceOwned):
    """A file of bids imported into a source: its counts, its first errors (by line), its state.
    Its bids are stored by a crawl of its own (`crawl`: revisions and events as crawls have)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        OCDS = "ocds", "OCDS package"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="imports")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="imports")
    crawl = models.OneToOneField(
        Crawl, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_job"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=5, choices=Format.choices)
    encoding = models.CharField(max_length=40, blank=True)
    # The upload kept for the worker (IMPORT_DIR) until the import ends; "" once removed.
    path = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0, help_text="Records in the file.")
    rows_done = models.PositiveIntegerField(default=0, help_text="Records read so far.")
    rows_failed = models.PositiveIntegerField(default=0)
    items_new = models.PositiveIntegerField(default=0)
    items_changed = models.PositiveIntegerField(default=0)
    items_unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text='The first errors: [{"line", "field", "message"}].'
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # --- i16-import: the lease of the run that holds the job (crawls/services/import_jobs.py) ---
    # Its last sign of life: when its task was sent (queued), when a batch was stored (running).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The run that holds it ("<task id>/<random>"); a batch is stored only under this lease.
    lease = models.CharField(max_length=200, blank=True, editable=False)
    takeovers = models.PositiveSmallIntegerField(
        default=0, help_text="Times another run took over from a run that died."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workspace", "-id"], name="importjob_workspace_recent")]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.filename} ({self.status})"
