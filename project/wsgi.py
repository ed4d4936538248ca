"""WSGI entry point: pages and the REST API from gunicorn worker processes (docs/operations.md).

WebSockets and the SSE stream are served by daphne (project.asgi); a reverse proxy in front
routes by path (project/serving.py for `make run`, deploy/nginx.conf for docker-compose).
"""

import os

from django.core.wsgi import get_wsgi_application

from project import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# In each gunicorn worker after its fork (no preload); before the handler loads the middleware.
tracing.setup("web")
application = get_wsgi_application()
