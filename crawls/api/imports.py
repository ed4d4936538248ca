"""Importing bids: POST a file to a source (docs/imports.md), then follow its job."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crawls.api.auth import WorkspaceRolePermission, require_role, scoped
from crawls.api.base import ScopedViewSetMixin
from crawls.api.errors import envelope
from crawls.api.schema import error_responses
from crawls.models import ImportJob, Membership, Source
from crawls.services import imports

# Room for the multipart envelope and the small fields beside the file.
ENVELOPE_BYTES = 64 * 1024


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    url = serializers.HyperlinkedIdentityField(view_name="import-detail")

    class Meta:
        model = ImportJob
        fields = [
            "id", "url", "workspace", "source", "crawl", "filename", "format", "encoding",
            "status", "rows_total", "rows_done", "rows_failed", "items_new", "items_changed",
            "items_unchanged", "errors", "error", "created_at", "started_at", "finished_at",
            "heartbeat_at", "takeovers",
        ]  # fmt: skip
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="CSV, JSON Lines or an OCDS release/record package.")
    format = serializers.ChoiceField(
        choices=ImportJob.Format.choices, required=False, help_text="Default: by file name."
    )
    encoding = serializers.CharField(
        required=False, max_length=40, help_text="Default: UTF-8 (BOM or not), else CP949."
    )


def _rejected(field: str, message: str, code: int) -> Response:
    kind = "too_large" if code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE else "invalid"
    return Response(envelope(kind, f"{field}: {message}", {field: [message]}), status=code)


class SourceImportView(APIView):
    """Import bids into a source from a file: small files at once (201), larger ones by a job
    (202 with its URL: poll it for progress). Writers of the source's workspace only."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="v1_sources_import",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={
            201: OpenApiResponse(ImportJobSerializer, description="Imported."),
            202: OpenApiResponse(ImportJobSerializer, description="Queued; follow its URL."),
            **error_responses(400, 401, 403, 404, 413),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        visible = scoped(request, Source.objects.all())  # type: ignore[no-untyped-call]
        source = visible.filter(pk=pk).first()
        if source is None:
            raise exceptions.NotFound()
        require_role(
            request, source.workspace_id, Membership.WRITER_ROLES, WorkspaceRolePermission.message
        )
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > settings.IMPORT_MAX_BYTES + ENVELOPE_BYTES:
            # Refused before the body is read.
            message = f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes"
            return _rejected("file", message, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        file = data["file"]
        try:
            job = imports.import_create(
                source=source,
                user=request.user,
                raw=file,
                filename=file.name or "",
                size=file.size or 0,
                fmt=data.get("format", ""),
                encoding=data.get("encoding", ""),
                keep=None,
            )
        except imports.ImportRejected as rejected:
            return _rejected(rejected.field, str(rejected), rejected.status)
        context = {"request": request}
        location = request.build_absolute_uri(reverse("import-detail", args=[job.pk]))
        if job.path:
            body = ImportJobSerializer(job, context=context).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
        job = imports.import_run(job_id=job.pk, raw=file) or job
        body = ImportJobSerializer(job, context=context).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


@extend_schema_view(
    list=extend_schema(
        responses={200: ImportJobSerializer(many=True), **error_responses(400, 401)}
    ),
    retrieve=extend_schema(responses={200: ImportJobSerializer, **error_responses(401, 404)}),
)
class ImportJobViewSet(  # type: ignore[misc]  # ScopedViewSetMixin's permission_classes
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ImportJob],
):
    """Imports of files of bids, newest first, with their progress and first errors."""

    serializer_class = ImportJobSerializer
    keyset_ordering = ("id",)

    def base_queryset(self) -> Any:
        return ImportJob.objects.all()
