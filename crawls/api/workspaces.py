from django.db.models import OuterRef, Subquery
from rest_framework import viewsets

from crawls import selectors
from crawls.api.serializers import WorkspaceSerializer
from crawls.models import Membership, Workspace


class WorkspaceViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's workspaces, with the caller's role in each."""

    serializer_class = WorkspaceSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Workspace.objects.none()
        user = self.request.user
        role = Membership.objects.filter(workspace=OuterRef("pk"), user=user).values("role")
        return selectors.workspace_list_for_user(user=user).annotate(role=Subquery(role[:1]))


class MembershipViewSet(viewsets.GenericViewSet):
    pass


class TokenViewSet(viewsets.GenericViewSet):
    pass
