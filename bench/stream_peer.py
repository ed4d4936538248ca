"""The peer of bench/stream.py: a stock Channels consumer that forwards its crawl group's messages.

No authentication, no log, no replay, no gap filling, Channels' stock dispatch. Served by the
same daphne as Forest's streams: this ASGI app is project.asgi's plus the /ws/peer/ route.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from crawls import realtime  # noqa: E402
from project.routing import websocket_urlpatterns  # noqa: E402


class PeerConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = realtime.crawl_group(self.scope["url_route"]["kwargs"]["crawl_id"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def crawl_event(self, message):
        await self.send_json(message)


routes = [*websocket_urlpatterns, path("ws/peer/<int:crawl_id>/", PeerConsumer.as_asgi())]
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
    }
)
