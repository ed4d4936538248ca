"""/api/v1/notifications/, /api/v1/alert-rules/ and /api/v1/channels/ (in project/urls.py)."""

from rest_framework.routers import SimpleRouter

from notifications.api import AlertRuleViewSet, NotificationViewSet
from notifications.channel_api import ChannelViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("alert-rules", AlertRuleViewSet, basename="alertrule")
router.register("channels", ChannelViewSet, basename="channel")

urlpatterns = router.urls
