"""WebSocket routes of every app, gathered in one list for project.asgi."""

from django.urls import path

from crawls import consumers

websocket_urlpatterns: list = [
    path("ws/crawls/<int:crawl_id>/", consumers.CrawlEventConsumer.as_asgi()),
    path("ws/workspace/", consumers.WorkspaceEventConsumer.as_asgi()),
    path("ws/notifications/", consumers.NotificationConsumer.as_asgi()),
]
