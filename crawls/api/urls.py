from rest_framework.routers import DefaultRouter

from crawls.api.views import WorkspaceViewSet

router = DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")

urlpatterns = router.urls
