"""Bids: list (filters, search, ordering), retrieve with field history, streamed export.

Read-only for everyone: bids are written by crawls. Filters live in crawls.filters.BidFilter.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from crawls import selectors
from crawls.api.auth import request_token, workspace_ids_of, workspaces_of
from crawls.api.base import ScopedViewSetMixin
from crawls.api.schema import ERROR, error_responses
from crawls.api.serializers_bids import BidDetailSerializer, BidSerializer, export_blocks
from crawls.filters import BidFilter

# ?ordering= → the column ordered by (descending, nulls last, then id descending).
ORDERINGS = {
    "-post_date": "post_date",
    "-views": "views",
    "-amount": "amount",
    "deadline": "deadline",
    "-deadline": "deadline",
}
ASCENDING_ORDERINGS = frozenset({"deadline"})  # soonest deadline first (still nulls last)
DEFAULT_ORDERING = "-post_date"
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}

ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    str,
    enum=list(ORDERINGS),
    default=DEFAULT_ORDERING,
    description="Newest post first (default), most viewed, largest amount, soonest deadline "
    "(`deadline`) or latest deadline (`-deadline`); ties by id (ascending with `deadline`). "
    "Bids without the value come last.",
)


def ordering_field(request) -> str:
    raw = request.query_params.get("ordering") or DEFAULT_ORDERING
    if raw not in ORDERINGS:
        raise ValidationError({"ordering": [f"must be one of {', '.join(ORDERINGS)}"]})
    return ORDERINGS[raw]


def ordering_ascending(request: Any) -> bool:
    """Whether the (valid) ordering asked for runs ascending (`deadline`)."""
    return (request.query_params.get("ordering") or DEFAULT_ORDERING) in ASCENDING_ORDERINGS


@extend_schema(tags=["bids"])
@extend_schema_view(
    retrieve=extend_schema(responses={200: BidDetailSerializer, **error_responses(401, 404)})
)
class BidViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Bids of the caller's workspaces (of the token's workspace, with a token)."""

    filterset_class = BidFilter
    keyset_nullable = frozenset(ORDERINGS.values())

    def base_queryset(self):
        return selectors.bid_list()

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False) or request_token(self.request):
            return queryset  # a token's scope already names its workspace
        # Workspace ids as constants (besides the scoping subquery) let PostgreSQL walk the
        # (workspace, post_date, id) index instead of sorting every visible bid.
        return queryset.filter(workspace_id__in=self.workspace_ids)

    def filter_queryset(self, queryset):
        if self.request.query_params.keys() & BidFilter.base_filters.keys():
            return super().filter_queryset(queryset)
        return queryset  # no filter asked for: don't build the filter form

    def get_serializer_class(self):
        return BidDetailSerializer if self.action == "retrieve" else BidSerializer

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.order_field = ordering_field(request)
        self.keyset_ordering = (self.order_field, "id")
        self.keyset_ascending = ordering_ascending(request)
        # The deadline indexes are partial (values apart from nulls): see KeysetPagination.
        self.keyset_nulls_apart = self.order_field in selectors.NULLS_APART_FIELDS

    def perform_content_negotiation(self, request, force=False):
        # An export is a file whatever the Accept header says (errors stay JSON).
        return super().perform_content_negotiation(request, force=force or self.action == "export")

    @cached_property
    def workspace_ids(self) -> list[int]:
        # As constants, a bids query can use its ordered index.
        return list(workspace_ids_of(self.request))

    def get_object(self):
        bid = super().get_object()
        bid.recent_revisions = selectors.bid_revisions(bid=bid)
        return bid

    @extend_schema(
        parameters=[ORDERING_PARAMETER],
        responses={200: BidSerializer(many=True), **error_responses(400, 401)},
    )
    def list(self, request, *args, **kwargs):
        # Rows as dicts (what the serializer reads): no model instance per bid.
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset.values(*selectors.BID_FIELDS, "source_name"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        filters=True,
        parameters=[
            ORDERING_PARAMETER,
            OpenApiParameter(
                "type", str, enum=[*EXPORT_TYPES], default="csv", description="File format."
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description="UTF-8 CSV with a header row."
            ),
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.BINARY, description="JSON Lines: one bid (as in the list) per line."
            ),
            **{(code, "application/json"): ERROR for code in (400, 401)},
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request, *args, **kwargs):
        """Every bid the list's filters, search and ordering select, streamed as a file.

        Read in keyset chunks of 2,000 rows as the file is sent: memory stays flat whatever the
        size. Text cells of the CSV starting with = + - @ get a leading ' (formula injection).
        """
        kind = request.query_params.get("type") or "csv"
        if kind not in EXPORT_TYPES:
            raise ValidationError({"type": [f"must be one of {', '.join(EXPORT_TYPES)}"]})
        queryset = self.filter_queryset(self.get_queryset())  # 400 on bad filters, before streaming
        workspace_ids = self.workspace_ids
        chosen = _cleaned(request, "workspace")
        if chosen is not None:
            workspace_ids = [w for w in workspace_ids if w == chosen]
        rows = selectors.bid_rows_in_order(
            queryset=queryset,
            field=self.order_field,
            workspace_ids=workspace_ids,
            ascending=self.keyset_ascending,
        )
        blocks = export_blocks(rows, kind)
        # Under ASGI a sync iterator would be read whole before sending: hand it an async one.
        content = _async_blocks(blocks) if isinstance(request._request, ASGIRequest) else blocks
        response = StreamingHttpResponse(content, content_type=EXPORT_TYPES[kind])
        response["Content-Disposition"] = content_disposition_header(
            True, f"bids-{self._export_name(workspace_ids)}-{timezone.localdate()}.{kind}"
        )
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # proxies: pass it on as it comes
        return response

    def _export_name(self, workspace_ids: list[int]) -> str:
        if len(workspace_ids) == 1:
            slug = (
                workspaces_of(self.request)
                .filter(pk=workspace_ids[0])
                .values_list("slug", flat=True)
                .first()
            )
            if slug:
                return slug
        return "all"


def _cleaned(request, name: str):
    """A filter's cleaned value, if given (the filters already validated the request)."""
    if name not in request.query_params:
        return None
    form = BidFilter(request.query_params).form
    return form.cleaned_data.get(name) if form.is_valid() else None


async def _async_blocks(blocks):
    """`blocks` read in the request's thread (its database connection), one block per await."""
    read = sync_to_async(next, thread_sensitive=True)
    while (block := await read(blocks, None)) is not None:
        yield block
