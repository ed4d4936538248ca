"""What every Forest viewset shares: scoped querysets, role checks and ETag on retrieve."""

from __future__ import annotations

import hashlib
import json

from rest_framework import permissions, status
from rest_framework.response import Response

from crawls.api.auth import WorkspaceRolePermission, scoped


class ScopedViewSetMixin:
    """Set `base_queryset()`; get_queryset() returns it scoped to the caller."""

    permission_classes = [permissions.IsAuthenticated, WorkspaceRolePermission]

    def base_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        queryset = self.base_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return queryset.none()
        return scoped(self.request, queryset)

    def retrieve(self, request, *args, **kwargs):
        """The object with an ETag; 304 when If-None-Match names the current one."""
        data = self.get_serializer(self.get_object()).data
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
        etag = f'"{digest.hexdigest()[:32]}"'
        if etag in request.headers.get("If-None-Match", ""):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})
