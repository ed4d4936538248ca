"""/api/v1/: one router for every resource."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from crawls.api import stream
from crawls.api.bids import BidViewSet
from crawls.api.crawls import CrawlViewSet, SourceViewSet
from crawls.api.imports import ImportJobViewSet, SourceImportView
from crawls.api.workspaces import MembershipViewSet, TokenViewSet, WorkspaceViewSet

router = DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("members", MembershipViewSet, basename="member")
router.register("tokens", TokenViewSet, basename="token")
router.register("sources", SourceViewSet, basename="source")
router.register("crawls", CrawlViewSet, basename="crawl")
router.register("bids", BidViewSet, basename="bid")
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = [
    # Server-Sent Events: a plain async view, outside the OpenAPI schema (docs/live.md).
    path("crawls/<int:pk>/events/stream", stream.crawl_event_stream, name="crawl-events-stream"),
    path("sources/<int:pk>/import/", SourceImportView.as_view(), name="source-import"),
    *router.urls,
]
