"""Sources, crawls and their frontier and events (bids and revisions: crawls.admin.bids). Sources
are saved and deleted, crawls started, cancelled and retried through services, as the API does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from crawls import events, services
from crawls.admin.base import (
    BigTableAdmin,
    CappedCountPaginator,
    ScopedRelatedFilter,
    WorkspaceScopedAdmin,
    change_link,
    changelist_link,
)
from crawls.engine import progress
from crawls.forms import BoundedJSONField, LinesField
from crawls.models import Bid, Crawl, CrawlEvent, FrontierUrl, Source


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never shows a value again (not even what was typed, on an error)."""

    def format_value(self, value: object) -> None:
        return None


class SourceForm(forms.ModelForm):
    """The model's fields, checked by services.source_clean: the API's rules, not a copy."""

    start_urls = LinesField()
    allowed_hosts = LinesField(required=False)
    include_patterns = LinesField(required=False)
    exclude_patterns = LinesField(required=False)
    kind = forms.ChoiceField(
        choices=Source.Kind.choices,
        required=False,
        initial=Source.Kind.HTML,
        help_text="Default html. " + str(Source._meta.get_field("kind").help_text),
    )
    rules = BoundedJSONField(help_text=Source._meta.get_field("rules").help_text)
    # Write-only: the model's `secrets` is never a field of this form, so never on the page.
    secrets_text = forms.CharField(
        label="Set secrets",
        required=False,
        strip=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="NAME=VALUE a line sets a secret the rules use as {secret.NAME}; NAME= "
        "removes it; names not written keep their values. Values are never shown.",
    )

    class Meta:
        model = Source
        fields = ["workspace", *(n for n in services.SOURCE_FIELDS if n != "secrets")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sorted(self.instance.secrets or {})
        stored = f"Set: {', '.join(names)}." if names else "None set."
        self.fields["secrets_text"].help_text = f"{stored} {self.fields['secrets_text'].help_text}"

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or Source.Kind.HTML

    def clean_quality_thresholds(self) -> object:
        return self.cleaned_data.get("quality_thresholds") or {}  # blank: the defaults

    def clean_secrets_text(self) -> dict[str, str]:
        """The source's secrets after the lines written here (NAME=VALUE sets, NAME= removes)."""
        secrets = dict(self.instance.secrets or {})
        for number, line in enumerate(self.cleaned_data["secrets_text"].splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep or not name:
                raise forms.ValidationError(f"line {number}: write NAME=VALUE")
            if value.strip():
                secrets[name] = value.strip()
            else:
                secrets.pop(name, None)
        return secrets

    def clean(self):
        cleaned = super().clean() or {}
        if self.errors:  # a field that did not parse would be reported twice
            return cleaned
        cleaned["secrets"] = cleaned.pop("secrets_text", {})
        candidate = Source(
            pk=self.instance.pk,
            workspace_id=(cleaned.get("workspace") or self.instance.workspace).pk,
            **{name: cleaned[name] for name in services.SOURCE_FIELDS if name in cleaned},
        )
        try:
            services.source_clean(candidate)
        except ValidationError as error:
            raise ValidationError(
                {
                    ("secrets_text" if field == "secrets" else field): messages
                    for field, messages in error.message_dict.items()
                }
            ) from error
        return cleaned

    def validate_unique(self):
        """The name's uniqueness is one of source_clean's rules (reported once, on `name`)."""


@admin.register(Source)
class SourceAdmin(WorkspaceScopedAdmin):
    form = SourceForm
    list_display = [
        "name", "kind", "workspace", "schedule_cron", "overlap_policy", "max_pages", "updated_at",
        "crawls_link",
    ]  # fmt: skip
    list_filter = [("workspace", ScopedRelatedFilter), "kind", "overlap_policy", "obey_robots"]
    list_select_related = ["workspace"]
    search_fields = ["name"]
    ordering = ["name", "id"]
    raw_id_fields = ["workspace"]
    readonly_fields = ["periodic_task", "created_at", "updated_at", "crawls_link"]
    actions = ["start_crawl"]
    fieldsets = [
        (None, {"fields": ["workspace", "name", "start_urls", "crawls_link"]}),
        ("Scope", {"fields": [
            "allowed_hosts", "max_depth", "max_pages", "include_patterns", "exclude_patterns",
        ]}),
        ("Politeness", {"fields": [
            "concurrency_per_host", "delay_seconds", "obey_robots", "user_agent",
        ]}),
        ("Extraction", {"fields": ["kind", "rules", "secrets_text"]}),
        ("Quality and presence", {"fields": ["quality_thresholds", "track_removals"]}),
        ("Run policy", {"fields": [
            "schedule_cron", "schedule_timezone", "periodic_task", "overlap_policy",
            "retry_max", "retry_backoff_seconds", "time_limit_seconds",
        ]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]  # fmt: skip

    @admin.display(description="crawls")
    def crawls_link(self, source: Source) -> str:
        if source.pk is None:
            return "-"
        return changelist_link(Crawl, "crawls", source__id__exact=source.pk)

    def get_readonly_fields(self, request, obj=None):
        # Crawls and bids keep the workspace they were made in: a source does not move.
        fields = list(super().get_readonly_fields(request, obj))
        return fields if obj is None else ["workspace", *fields]

    def save_model(self, request, obj, form, change) -> None:
        values = {name: form.cleaned_data[name] for name in services.SOURCE_FIELDS}
        if change:
            services.source_update(source=obj, **values)
        else:
            created = services.source_create(workspace=obj.workspace, **values)
            obj.pk, obj.periodic_task_id = created.pk, created.periodic_task_id
            obj._state.adding = False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Its crawl's workers would lose their rows (source_delete refuses too).
        if obj is not None and obj.crawls.filter(status__in=Crawl.ACTIVE).exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj) -> None:
        services.source_delete(source=obj)

    def delete_queryset(self, request, queryset) -> None:
        for source in queryset:
            try:
                services.source_delete(source=source)
            except services.CrawlConflict as conflict:
                self.message_user(request, f"{source} kept: {conflict}.", messages.WARNING)

    @admin.action(description="Start a crawl of the selected sources", permissions=["change"])
    def start_crawl(self, request, queryset) -> None:
        started = 0
        for source in self.writable(request, queryset):
            try:
                crawl = services.crawl_start(source=source, user=request.user, trigger="admin")
            except services.CrawlConflict as conflict:
                self.message_user(request, f"{source}: not started, {conflict}.", messages.ERROR)
            except services.Backpressure as busy:
                self.message_user(request, f"{source}: not started, {busy}.", messages.WARNING)
            else:
                started += 1
                self.message_user(request, f"{source}: crawl {crawl.pk} queued.", messages.INFO)
        self.message_user(request, f"{started} crawl(s) started.", messages.SUCCESS)


@admin.register(Crawl)
class CrawlAdmin(WorkspaceScopedAdmin):
    list_display = [
        "id", "source_link", "status", "attempt", "pages_done", "pages_failed", "pages_total",
        "items_new", "items_changed", "created_at", "finished_at", "events_link", "bids_link",
    ]  # fmt: skip
    list_display_links = ["id"]
    list_filter = [
        "status",
        ("source", ScopedRelatedFilter),
        ("workspace", ScopedRelatedFilter),
        "cancel_requested",
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["source"]
    search_fields = ["=id", "source__name"]
    ordering = ["-id"]
    paginator = CappedCountPaginator  # scheduled sources add crawls every hour
    # Everything on a crawl is written by the crawl itself; operators act through the actions.
    fields = [
        "source_link", "workspace", "status", "cancel_requested", "attempt", "created_by",
        "pages_done", "pages_failed", "pages_total", "items_new", "items_changed",
        "items_unchanged", "errors", "error", "quality", "event_seq", "created_at", "started_at",
        "finished_at", "deadline_at", "heartbeat_at", "events_link", "bids_link",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["cancel", "retry"]

    @admin.display(description="source", ordering="source__name")
    def source_link(self, crawl: Crawl) -> str:
        return change_link(Source, crawl.source_id, crawl.source.name)

    @admin.display(description="events")
    def events_link(self, crawl: Crawl) -> str:
        return changelist_link(CrawlEvent, "events", crawl__id__exact=crawl.pk)

    @admin.display(description="bids")
    def bids_link(self, crawl: Crawl) -> str:
        return changelist_link(Bid, "bids", crawl=crawl.pk)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:  # the live progress partial above the fields shows its figures
            progress.crawl_with_progress(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_add_permission(self, request) -> bool:
        return False  # crawls are started from a source (the "Start a crawl" action)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a crawl's rows go with its source

    @admin.action(description="Cancel the selected crawls", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        for crawl in self.writable(request, queryset):
            if not crawl.is_active:
                message = f"Crawl {crawl.pk} is {crawl.status}: nothing to cancel."
                self.message_user(request, message, messages.WARNING)
                continue
            crawl = services.crawl_cancel(crawl=crawl)
            outcome = "cancelled" if crawl.status == Crawl.Status.CANCELLED else "stopping"
            self.message_user(request, f"Crawl {crawl.pk}: {outcome}.", messages.SUCCESS)

    @admin.action(description="Retry the selected crawls", permissions=["change"])
    def retry(self, request, queryset) -> None:
        for crawl in self.writable(request, queryset).select_related("source"):
            try:
                new = services.crawl_retry(crawl=crawl, user=request.user)
            except services.CrawlConflict as conflict:
                message, level = f"not retried, {conflict}", messages.ERROR
            except services.Backpressure as busy:
                message, level = f"not retried, {busy}", messages.WARNING
            else:
                message, level = f"retried as crawl {new.pk}", messages.SUCCESS
            self.message_user(request, f"Crawl {crawl.pk}: {message}.", level)


EVENT_TYPES = (
    events.QUEUED, events.STARTED, events.PROGRESS, events.ITEMS, events.RETRYING,
    events.RESUMED, events.CANCEL_REQUESTED, events.SUCCEEDED, events.FAILED, events.CANCELLED,
    events.DEGRADED, events.PAGE_ERROR, events.URL_REFUSED,
)  # fmt: skip


class EventTypeFilter(admin.SimpleListFilter):
    """The event types crawls write (a DISTINCT over the log would scan all of it)."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(t, t) for t in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


def _crawl_link(row) -> str:
    return change_link(Crawl, row.crawl_id)


@admin.register(CrawlEvent)
class CrawlEventAdmin(WorkspaceScopedAdmin, BigTableAdmin):
    list_display = ["crawl_link", "sequence", "type", "created_at", "payload"]
    list_display_links = ["sequence"]
    list_filter = [EventTypeFilter, ("created_at", admin.DateFieldListFilter)]
    ordering = ["-crawl_id", "-sequence"]  # the (crawl, sequence) index, read backwards
    sortable_by = []
    fields = ["crawl_link", "workspace", "sequence", "type", "payload", "created_at"]
    readonly_fields = fields

    @admin.display(description="crawl")
    def crawl_link(self, event: CrawlEvent) -> str:
        return _crawl_link(event)


@admin.register(FrontierUrl)
class FrontierUrlAdmin(WorkspaceScopedAdmin, BigTableAdmin):
    list_display = [
        "url", "crawl_link", "kind", "state", "depth", "last_status", "attempts", "fetched_at",
    ]  # fmt: skip
    list_filter = ["state", "kind"]
    search_fields = ["url"]
    ordering = ["-id"]
    sortable_by = []
    exclude = ["url_hash"]
    readonly_fields = [
        "crawl_link", "workspace", "url", "depth", "kind", "state", "lease_owner",
        "lease_expires_at", "attempts", "last_status", "error", "fetched_at",
    ]  # fmt: skip

    @admin.display(description="crawl")
    def crawl_link(self, url: FrontierUrl) -> str:
        return _crawl_link(url)
