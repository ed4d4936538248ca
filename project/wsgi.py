"""WSGI entry point: pages and the REST API from gunicorn worker processes (docs/operations.md).

WebSockets and the SSE stream are served by daphne (project.asgi); a reverse proxy in front
routes by path (project/serving.py for `make run`, deploy/nginx.conf for docker-compose).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

application = get_wsgi_application()
