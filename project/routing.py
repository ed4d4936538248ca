"""WebSocket routes of every app, gathered in one list for project.asgi.

The crawl, workspace and notification streams are added here as their consumers are built.
"""

websocket_urlpatterns: list = []
