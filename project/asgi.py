"""ASGI entry point: HTTP to Django; WebSockets to Channels consumers (session auth, origins)."""

import os

from django.core.asgi import get_asgi_application

from project import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Before the handler loads the middleware (the Django instrumentation adds one).
tracing.setup("web")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from project.dbscope import ConsumerScopeMiddleware  # noqa: E402
from project.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(ConsumerScopeMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
