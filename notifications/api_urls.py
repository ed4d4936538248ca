"""/api/v1/notifications/ and /api/v1/alert-rules/ (project/urls.py includes them)."""

from rest_framework.routers import SimpleRouter

from notifications.api import AlertRuleViewSet, NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("alert-rules", AlertRuleViewSet, basename="alertrule")

urlpatterns = router.urls
