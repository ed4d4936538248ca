"""Serializers of sources, crawls, their event log and frontier: input parsing and output shape.

Validation of a source's meaning (rules, start URLs through the SSRF guard, patterns, cron) is
the services' (`source_clean`); these check types and the one thing the model does not: a
name unique in its workspace.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crawls import events, services
from crawls.api.auth import scoped
from crawls.api.serializers import CallersWorkspaceField
from crawls.models import Crawl, CrawlEvent, FrontierUrl, Source


def stream_path(crawl_id: int) -> str:
    """Where a crawl's events are served as Server-Sent Events (built in a later issue)."""
    return f"/api/v1/crawls/{crawl_id}/events/stream"


def websocket_path(crawl_id: int) -> str:
    """Where a crawl's events are pushed over a WebSocket (built in a later issue)."""
    return f"/ws/crawls/{crawl_id}/"


# --- Sources ---------------------------------------------------------------------------------


SECRETS_HELP = (
    "Write-only: the source's secrets (service keys) by name, which rules use as "
    "`{secret.NAME}`; never shown (responses list `secret_names`). Names are lower case "
    "letters, digits and _; values non-empty strings; at most 20, each at most 4 KiB. "
    "Writing `secrets` replaces the whole set: a name left out is removed, and a null value "
    "keeps that name's stored value."
)


class SecretsField(serializers.DictField):
    """A flat object of names to values (null: keep the stored value); checked by the service."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            child=serializers.CharField(allow_null=True, allow_blank=True, trim_whitespace=False),
            write_only=True,
            required=False,
            help_text=SECRETS_HELP,
            **kwargs,
        )


class SourceSerializer(serializers.ModelSerializer):
    """A source. `workspace` is read here; creation takes it through SourceWorkspaceSerializer
    (the view resolves it, checks the role, and passes `workspace_id` in the context)."""

    kind = serializers.ChoiceField(
        choices=Source.Kind.choices,
        default=Source.Kind.HTML,
        help_text="What the source serves; `rules` are of this kind (docs/sources.md).",
    )
    secrets = SecretsField()
    secret_names = serializers.SerializerMethodField(
        help_text="The names of the source's secrets, sorted (their values are never shown)."
    )

    class Meta:
        model = Source
        fields = [
            "id", "workspace", *services.SOURCE_FIELDS, "secret_names", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "workspace", "created_at", "updated_at"]
        # (workspace, name) is checked by services.source_clean: workspace is not input here
        validators = []

    def get_secret_names(self, source: Source) -> list[str]:
        return sorted(source.secrets or {})


class SourceWorkspaceSerializer(serializers.Serializer):
    """The workspace a new source goes to: the one named, else the token's, else the caller's
    only workspace. Workspaces the caller cannot see (or outside the token's) do not exist."""

    workspace = CallersWorkspaceField(
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "no workspace {pk_value} among yours"},
    )

    def validate(self, attrs):
        if attrs.get("workspace") is not None:
            return attrs
        candidates = list(self.fields["workspace"].get_queryset().order_by("id")[:2])
        if len(candidates) != 1:
            why = "several workspaces" if candidates else "no workspace"
            raise serializers.ValidationError(
                {"workspace": [f"required: you are a member of {why}"]}
            )
        return {"workspace": candidates[0]}


class SourceCreateSerializer(SourceSerializer):
    """What POST /sources/ takes (documentation: the view reads the two parts apart)."""

    workspace = CallersWorkspaceField(
        required=False,
        allow_null=True,
        help_text="Default: the token's workspace, else the caller's only one.",
    )

    class Meta(SourceSerializer.Meta):
        read_only_fields = ["id", "created_at", "updated_at"]


class PreviewSerializer(serializers.Serializer):
    """POST /sources/preview/: rules and a URL to try them on."""

    kind = serializers.ChoiceField(
        choices=Source.Kind.choices, default=Source.Kind.HTML, help_text="The rules' kind."
    )
    rules = serializers.JSONField(help_text="Extraction rules (docs/crawling.md).")
    url = serializers.CharField(
        max_length=2048, help_text="A start URL: the rules' first request for it is fetched."
    )
    secrets = SecretsField()


class SourcePreviewSerializer(serializers.Serializer):
    """POST /sources/{id}/preview/: the source's rules on a URL (its first start URL)."""

    url = serializers.CharField(max_length=2048, required=False)


class PreviewResultSerializer(serializers.Serializer):
    """What source_preview returns (documentation only)."""

    url = serializers.CharField(help_text="The URL fetched, after redirects.")
    status = serializers.IntegerField(allow_null=True)
    error = serializers.DictField(
        required=False,
        help_text="{class, message}: not fetched, or (class `publisher`) the publisher's error.",
    )
    fields = serializers.DictField(required=False, help_text="Extracted fields.")
    errors = serializers.DictField(required=False, help_text="Field → extraction problem.")
    canonical = serializers.CharField(required=False, allow_null=True)
    follow = serializers.ListField(child=serializers.CharField(), required=False)
    items = serializers.ListField(child=serializers.CharField(), required=False)
    kind = serializers.ChoiceField(choices=Source.Kind.choices, required=False)
    request = serializers.CharField(
        required=False, help_text="The request sent, when not a plain GET (secrets redacted)."
    )
    records_total = serializers.IntegerField(
        required=False, help_text="Records read off the response (json, xml, ocds)."
    )
    records = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="The first 20 records: {key, url, fields, errors}.",
    )
    requests = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Next pages' requests."
    )
    item_requests = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Detail pages' requests."
    )


class QualityTrendSerializer(serializers.Serializer[Any]):
    """GET /sources/{id}/quality/: one crawl of the trend (docs/quality.md)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Crawl.Status.choices)
    finished_at = serializers.DateTimeField(allow_null=True)
    items = serializers.IntegerField(help_text="Items seen (read, or answered not modified).")
    coverage = serializers.DictField(
        child=serializers.FloatField(), help_text="Field → share of the items read with it."
    )
    mean_coverage = serializers.FloatField(allow_null=True)


# --- Crawls ----------------------------------------------------------------------------------


class CrawlSerializer(serializers.ModelSerializer):
    source_name = serializers.SerializerMethodField()
    is_active = serializers.BooleanField(read_only=True)
    websocket_url = serializers.SerializerMethodField(help_text="Live events (WebSocket).")
    stream_url = serializers.SerializerMethodField(help_text="Live events (Server-Sent Events).")

    class Meta:
        model = Crawl
        fields = [
            "id", "workspace", "source", "source_name", "status", "is_active",
            "cancel_requested", "attempt", "created_by", "pages_done", "pages_failed",
            "pages_total", "items_new", "items_changed", "items_unchanged", "errors", "error",
            "quality", "created_at", "started_at", "finished_at", "deadline_at", "heartbeat_at",
            "websocket_url", "stream_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_source_name(self, crawl: Crawl) -> str:
        # Lists annotate it (one join, no query per row); a single crawl reads its source.
        return getattr(crawl, "source_name", None) or crawl.source.name

    def _bases(self) -> tuple[str, str]:
        """(ws(s)://host, http(s)://host) of the request, computed once per response."""
        if "_url_bases" not in self.context:
            request = self.context["request"]
            host = request.get_host()
            secure = request.is_secure()
            self.context["_url_bases"] = (
                f"{'wss' if secure else 'ws'}://{host}",
                f"{'https' if secure else 'http'}://{host}",
            )
        return self.context["_url_bases"]

    def get_websocket_url(self, crawl: Crawl) -> str:
        return self._bases()[0] + websocket_path(crawl.pk)

    def get_stream_url(self, crawl: Crawl) -> str:
        return self._bases()[1] + stream_path(crawl.pk)


@extend_schema_field(OpenApiTypes.INT)
class CallersSourceField(serializers.PrimaryKeyRelatedField):
    """A source the caller can see."""

    def get_queryset(self):
        return scoped(self.context["request"], Source.objects.all())


class CrawlCreateSerializer(serializers.Serializer):
    """POST /crawls/: the source to crawl (one the caller can see; others do not exist)."""

    source = CallersSourceField(
        error_messages={"does_not_exist": "no source {pk_value} among yours"},
    )


class CrawlEventSerializer(serializers.Serializer):
    """One event of a crawl's log, in its wire form (the same as on the WebSocket and SSE)."""

    type = serializers.CharField(help_text=f'Always "{events.MESSAGE_TYPE}".')
    crawl = serializers.IntegerField()
    workspace = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="Gapless, increasing sequence within the crawl.")
    event = serializers.CharField(help_text="crawl.queued, crawl.progress, page.error, …")
    payload = serializers.JSONField()
    at = serializers.DateTimeField()

    def to_representation(self, instance: CrawlEvent) -> dict:
        return events.event_message(instance)


class FrontierUrlSerializer(serializers.ModelSerializer):
    class Meta:
        model = FrontierUrl
        fields = [
            "id", "url", "kind", "state", "depth", "attempts", "last_status", "error",
            "fetched_at",
        ]  # fmt: skip
        read_only_fields = fields
