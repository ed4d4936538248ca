"""Bounded requests and outages, for every path: the API answers in its error envelope, pages
with a plain page.

- RequestLimitsMiddleware: a path and query string longer than REQUEST_MAX_URL_LENGTH answers
  414 before anything reads the request; a body over DATA_UPLOAD_MAX_MEMORY_SIZE (by its
  Content-Length) answers 413 once the view is known, before the view or CSRF reads it.
- OutageMiddleware: PostgreSQL or Redis unreachable while a page is served answers 503 with
  Retry-After, naming the part. The API's views answer the same through the DRF exception
  handler (crawls/api/errors.py); errors raised by middleware (a session saved while the
  database is down) reach Django's 500 handler, which asks `outage_response` too
  (project/urls.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape

from crawls.api.errors import envelope
from project.outage import outage_part

logger = logging.getLogger(__name__)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def refusal(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A refusal in the API's envelope on /api/ paths, else a small page."""
    response: HttpResponse
    if is_api(request):
        response = JsonResponse(envelope(code, message), status=status)
    else:
        title = escape(message[:1].upper() + message[1:])
        page = f"<!doctype html><title>{status}</title><h1>{title}</h1>\n"
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def outage_response(request: HttpRequest, exc: BaseException | None) -> HttpResponse | None:
    """503 naming the unreachable part, with Retry-After; None when `exc` is no outage."""
    part = outage_part(exc)
    if part is None:
        return None
    logger.warning("%s unavailable: %s: %s", part, type(exc).__name__, exc)
    return refusal(
        request,
        503,
        "unavailable",
        f"{part} unavailable",
        {"Retry-After": str(settings.OUTAGE_RETRY_AFTER_SECONDS)},
    )


def too_large_message() -> str:
    return f"the request body exceeds the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"


class RequestLimitsMiddleware(MiddlewareMixin):
    """414 for an overlong URL; 413 for a body over the limit (see the module's docstring)."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        query = request.META.get("QUERY_STRING", "")
        length = len(request.path) + (len(query) + 1 if query else 0)
        if length > settings.REQUEST_MAX_URL_LENGTH:
            return refusal(
                request,
                414,
                "uri_too_long",
                f"the path and query string exceed the limit of "
                f"{settings.REQUEST_MAX_URL_LENGTH} characters",
            )
        return None

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        # After URL resolution, so that the answer is noted against its route (tests).
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return refusal(request, 400, "invalid", "the Content-Length header is not a number")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return refusal(request, 413, "too_large", too_large_message())
        return None


class OutageMiddleware(MiddlewareMixin):
    """503 with Retry-After when a view finds PostgreSQL or Redis unreachable."""

    def process_exception(
        self, request: HttpRequest, exception: BaseException
    ) -> HttpResponse | None:
        return outage_response(request, exception)
