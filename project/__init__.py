"""Forest: settings, URLs, ASGI and Celery wiring, and the embedded-services bootstrap."""

from project.celery import app as celery_app

__all__ = ["celery_app"]
