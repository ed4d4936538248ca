"""/api/v1/: one router for every resource."""

from rest_framework.routers import DefaultRouter

from crawls.api.bids import BidViewSet
from crawls.api.crawls import CrawlViewSet, SourceViewSet
from crawls.api.workspaces import MembershipViewSet, TokenViewSet, WorkspaceViewSet

router = DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("members", MembershipViewSet, basename="member")
router.register("tokens", TokenViewSet, basename="token")
router.register("sources", SourceViewSet, basename="source")
router.register("crawls", CrawlViewSet, basename="crawl")
router.register("bids", BidViewSet, basename="bid")

urlpatterns = router.urls
