"""Imports of files of bids (i15-import; docs/imports.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from crawls.models.sources import Crawl, Source
from crawls.models.workspaces import Workspace, WorkspaceOwned


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
    # The lease of the run that holds the job (crawls/services/import_jobs.py).
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
