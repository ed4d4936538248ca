"""Sources and crawls.

- sources: members read; writers (owner, admin, member) create, change, preview and crawl;
  owners and admins delete (a source takes its crawls, bids and history with it), and not
  while one of its crawls is active (409: cancel it first).
- crawls: members read, with the crawl's event log (oldest first, `?after=<sequence>`) and
  frontier; writers start, cancel and retry. Starting answers 202 at once: the Celery task is
  sent when the transaction commits, and progress is followed on the URLs in the answer.

Rows the caller cannot see do not exist: 404 in the path, 400 naming the field in a body
(`workspace`, `source`). Starting a crawl refuses with 409 (the source's overlap policy is
"skip" and a crawl of it is active: `details.active_crawl`), or 429 with Retry-After (the
workspace has CRAWL_MAX_ACTIVE_PER_WORKSPACE crawls active; nothing is queued). Actions that
start crawls also count against the `crawl_create` rate.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import F
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crawls import quality_report, services
from crawls.api.auth import WorkspaceRolePermission, require_role, scoped
from crawls.api.base import ScopedViewSetMixin
from crawls.api.errors import envelope
from crawls.api.schema import error_responses
from crawls.api.serializers_crawls import (
    CrawlCreateSerializer,
    CrawlEventSerializer,
    CrawlSerializer,
    FrontierUrlSerializer,
    PreviewResultSerializer,
    PreviewSerializer,
    QualityTrendSerializer,
    SourceCreateSerializer,
    SourcePreviewSerializer,
    SourceSerializer,
    SourceWorkspaceSerializer,
)
from crawls.api.throttles import CrawlCreateThrottle
from crawls.filter_fields import CHOICES_HELP
from crawls.filters import (
    CrawlEventFilter,
    CrawlFilter,
    FrontierFilter,
    SourceFilter,
    filtered,
)
from crawls.models import Crawl, CrawlEvent, FrontierUrl, Membership, Source

# --- Shared ---------------------------------------------------------------------------------------


def require_writer(request, workspace_id: int) -> None:
    require_role(request, workspace_id, Membership.WRITER_ROLES, WorkspaceRolePermission.message)


def conflict_response(conflict: services.CrawlConflict) -> Response:
    active = conflict.active
    return Response(
        envelope("conflict", str(conflict), {"active_crawl": active.pk}),
        status=status.HTTP_409_CONFLICT,
    )


def start_response(request, start: Callable[[], Crawl]) -> Response:
    """Run `start` (a crawl_start or crawl_retry call) and answer 202, 409 or 429."""
    try:
        crawl = start()
    except services.CrawlConflict as conflict:
        return conflict_response(conflict)
    except services.Backpressure as busy:
        return Response(
            envelope("backpressure", str(busy), {"active": busy.active}),
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(busy.retry_after)},
        )
    data = CrawlSerializer(crawl, context={"request": request}).data
    location = request.build_absolute_uri(reverse("crawl-detail", args=[crawl.pk]))
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class ListFiltersOnlyMixin:
    """Query-string filters narrow lists only, not the object of a detail route or action."""

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset


def _started(*codes: int) -> dict:
    """The answers of an action that starts a crawl, with its own error `codes`."""
    return {
        202: OpenApiResponse(CrawlSerializer, description="Queued; follow its URLs."),
        **error_responses(*codes),
        409: OpenApiResponse(description="A crawl of the source is active (details.active_crawl)."),
        429: OpenApiResponse(
            description="Too many active crawls, or too many starts: Retry-After."
        ),
    }


# --- Sources --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: SourceSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: SourceSerializer, **error_responses(401, 404)}),
    create=extend_schema(
        request=SourceCreateSerializer,
        responses={201: SourceSerializer, **error_responses(400, 401, 403)},
    ),
    update=extend_schema(responses={200: SourceSerializer, **error_responses(400, 401, 403, 404)}),
    partial_update=extend_schema(
        responses={200: SourceSerializer, **error_responses(400, 401, 403, 404)}
    ),
    destroy=extend_schema(responses={204: None, **error_responses(401, 403, 404, 409)}),
)
class SourceViewSet(
    ListFiltersOnlyMixin,
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Sites to crawl, with their scope, politeness, extraction rules and run policy."""

    serializer_class = SourceSerializer
    filterset_class = SourceFilter
    keyset_ordering = ("id",)

    def base_queryset(self):
        return Source.objects.all()

    @property
    def write_roles(self):
        """Read by WorkspaceRolePermission: deleting a source is for owners and admins."""
        if self.action == "destroy":
            return Membership.MANAGER_ROLES
        return Membership.WRITER_ROLES

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action == "crawl":
            throttles.append(CrawlCreateThrottle())
        return throttles

    def create(self, request, *args, **kwargs):
        target = SourceWorkspaceSerializer(data=request.data, context={"request": request})
        target.is_valid(raise_exception=True)
        workspace = target.validated_data["workspace"]
        require_writer(request, workspace.pk)
        context = {**self.get_serializer_context(), "workspace_id": workspace.pk}
        serializer = SourceSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        source = services.source_create(workspace=workspace, **serializer.validated_data)
        location = request.build_absolute_uri(reverse("source-detail", args=[source.pk]))
        return Response(
            SourceSerializer(source, context=context).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

    def update(self, request, *args, partial: bool = False, **kwargs):
        source = self.get_object()
        data = request.data if isinstance(request.data, dict) else {}
        if str(data.get("workspace", source.workspace_id)) != str(source.workspace_id):
            raise exceptions.ValidationError({"workspace": ["a source cannot change workspace"]})
        serializer = self.get_serializer(source, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        source = services.source_update(source=source, **serializer.validated_data)
        return Response(self.get_serializer(source).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        try:
            services.source_delete(source=self.get_object())
        except services.CrawlConflict as conflict:
            return conflict_response(conflict)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="v1_sources_preview_rules",
        request=PreviewSerializer,
        responses={200: PreviewResultSerializer, **error_responses(400, 401, 403, 503)},
    )
    @action(detail=False, methods=["post"], url_path="preview", url_name="preview")
    def preview(self, request):
        """Try rules of a kind on one start URL: its first request fetched through the SSRF guard,
        nothing stored; `secrets` fill the rules' {secret.NAME} (never shown back). Writers only
        (in the token's workspace, or in any of the caller's)."""
        writer_of = Membership.objects.filter(user=request.user, role__in=Membership.WRITER_ROLES)
        if not scoped(request, writer_of).exists():
            raise exceptions.PermissionDenied(WorkspaceRolePermission.message)
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return self._preview(
            data["rules"],
            data["url"],
            kind=data["kind"],
            secrets={k: v for k, v in data.get("secrets", {}).items() if v},
        )

    @extend_schema(
        operation_id="v1_sources_preview_source",
        request=SourcePreviewSerializer,
        responses={200: PreviewResultSerializer, **error_responses(400, 401, 403, 404, 503)},
    )
    @action(detail=True, methods=["post"], url_path="preview", url_name="detail-preview")
    def preview_source(self, request, pk=None):
        """The source's rules on one URL (by default its first start URL)."""
        source = self.get_object()
        serializer = SourcePreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        url = serializer.validated_data.get("url") or source.start_urls[0]
        return self._preview(source.rules, url, kind=source.kind, secrets=source.secrets)

    @staticmethod
    def _preview(rules_data: object, url: str, *, kind: str, secrets: dict[str, str]) -> Response:
        try:
            preview = services.source_preview(
                rules_data=rules_data, url=url, kind=kind, secrets=secrets
            )
        except services.PreviewBusy as busy:
            return Response(
                envelope("busy", str(busy)),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(busy.retry_after)},
            )
        error = preview.get("error") or {}
        if error.get("class") == "refused":  # the guard said no: nothing was fetched from it
            raise exceptions.ValidationError({"url": [f"refused: {error['message']}"]})
        return Response(preview)

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="Crawls, 1 to 100 (default 20).")],
        responses={200: QualityTrendSerializer(many=True), **error_responses(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def quality(self, request: Request, pk: str | None = None) -> Response:
        """The quality trend of the source's last crawls that ended with a report (succeeded or
        degraded), oldest first (docs/quality.md)."""
        limit = request.query_params.get("limit", str(quality_report.TREND_CRAWLS))
        if not limit.isdigit() or not 1 <= int(limit) <= quality_report.TREND_MAX:
            raise exceptions.ValidationError({"limit": ["a whole number from 1 to 100"]})
        trend = quality_report.quality_trend(source=self.get_object(), limit=int(limit))
        return Response(QualityTrendSerializer(trend, many=True).data)

    @extend_schema(request=None, responses=_started(401, 403, 404))
    @action(detail=True, methods=["post"])
    def crawl(self, request, pk=None):
        """Start a crawl of this source (as POST /crawls/ does)."""
        source = self.get_object()
        return start_response(
            request, lambda: services.crawl_start(source=source, user=request.user, trigger="api")
        )


# --- Crawls ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: CrawlSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: CrawlSerializer, **error_responses(401, 404)}),
)
class CrawlViewSet(
    ListFiltersOnlyMixin,
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Crawls, newest first; each with its event log and frontier."""

    serializer_class = CrawlSerializer
    filterset_class = CrawlFilter

    def base_queryset(self):
        return Crawl.objects.annotate(source_name=F("source__name"))

    @property
    def keyset_ordering(self) -> tuple[str, ...]:
        # The log pages by sequence alone: unique within a crawl, and the order of its index.
        return {"events": ("sequence",)}.get(self.action, ("id",))

    @property
    def keyset_ascending(self) -> bool:
        return self.action in ("events", "frontier")  # a log, and the order of discovery

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action in ("create", "retry"):
            throttles.append(CrawlCreateThrottle())
        return throttles

    @extend_schema(request=CrawlCreateSerializer, responses=_started(400, 401, 403))
    def create(self, request, *args, **kwargs):
        """Queue a crawl of a source: 202 at once, with where to follow it."""
        serializer = CrawlCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        source = serializer.validated_data["source"]
        require_writer(request, source.workspace_id)
        return start_response(
            request, lambda: services.crawl_start(source=source, user=request.user, trigger="api")
        )

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(CrawlSerializer, description="Cancelled."),
            202: OpenApiResponse(
                CrawlSerializer,
                description="Running: stops after the page being read and one commit.",
            ),
            **error_responses(401, 403, 404),
            409: OpenApiResponse(description="Already finished: nothing to cancel."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: at once when queued; when running, after the page being read and one commit.
        Cancelling a cancelled crawl is a no-op (200); a succeeded, degraded or failed one
        answers 409."""
        crawl = services.crawl_cancel(crawl=self.get_object())
        data = self.get_serializer(crawl).data
        if crawl.status == Crawl.Status.CANCELLED:
            return Response(data)
        if crawl.status == Crawl.Status.RUNNING:
            return Response(data, status=status.HTTP_202_ACCEPTED)
        return Response(
            envelope("conflict", f"crawl {crawl.pk} already {crawl.status}: nothing to cancel"),
            status=status.HTTP_409_CONFLICT,
        )

    @extend_schema(request=None, responses=_started(401, 403, 404))
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Start a new crawl of a finished crawl's source; 409 while the crawl is active."""
        crawl = self.get_object()
        return start_response(request, lambda: services.crawl_retry(crawl=crawl, user=request.user))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", int, description="Only events with a greater sequence (0 or more)."
            )
        ],
        responses={200: CrawlEventSerializer(many=True), **error_responses(400, 401, 404)},
    )
    @action(
        detail=True,
        methods=["get"],
        serializer_class=CrawlEventSerializer,
        filterset_class=None,  # its own below: the schema generator expects Crawl filters
    )
    def events(self, request, pk=None):
        """The crawl's event log in order (sequence ascending), cursor-paginated."""
        crawl = self.get_object()
        log = scoped(request, CrawlEvent.objects.filter(crawl_id=crawl.pk))
        page = self.paginate_queryset(filtered(request, CrawlEventFilter, log))
        return self.get_paginated_response(CrawlEventSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, many=True, enum=values, description=CHOICES_HELP)
            for name, values in (
                ("state", FrontierUrl.State.values),
                ("kind", FrontierUrl.Kind.values),
            )
        ],
        responses={200: FrontierUrlSerializer(many=True), **error_responses(400, 401, 404)},
    )
    @action(
        detail=True,
        methods=["get"],
        serializer_class=FrontierUrlSerializer,
        filterset_class=None,
    )
    def frontier(self, request, pk=None):
        """The crawl's URLs in the order found, with their state, HTTP status and error."""
        crawl = self.get_object()
        urls = scoped(request, FrontierUrl.objects.filter(crawl_id=crawl.pk)).only(
            *FrontierUrlSerializer.Meta.fields
        )
        page = self.paginate_queryset(filtered(request, FrontierFilter, urls))
        return self.get_paginated_response(FrontierUrlSerializer(page, many=True).data)
