"""One error envelope for every API error: {"error": {"code", "message", "details"}}.

Validation errors keep DRF's field → messages mapping in `details`, so the bad field is named;
Django's ValidationError (raised by services) is treated the same. Bounded requests: a body over
DATA_UPLOAD_MAX_MEMORY_SIZE answers 413, too many form fields or JSON nested too deep 400.
PostgreSQL or Redis unreachable answers 503 with Retry-After (project/http.py names the part).
Anything unexpected is logged and answered with a 500 that reveals nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from crawls.api.parsers import RequestTooLarge
from project import outage

logger = logging.getLogger(__name__)


def envelope(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


def exception_handler(exc, context):
    part = outage.outage_part(exc)
    if part is not None:
        logger.warning("%s unavailable: %s: %s", part, type(exc).__name__, exc)
        response = drf_exception_handler(ServiceUnavailable(f"{part} unavailable"), context)
        response.data = envelope("unavailable", f"{part} unavailable")
        response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        return response
    # Django's own exceptions have no `.detail`/code: use DRF's equivalents.
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError(str(exc) or "too many form fields")
    elif isinstance(exc, RecursionError):  # a parser that nests too deep (ours checks first)
        exc = exceptions.ParseError(f"JSON nested deeper than {settings.JSON_MAX_DEPTH} levels")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            envelope("server_error", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = ", ".join(details)
        response.data = envelope("invalid", f"Invalid input: {fields}.", details)
    else:
        detail = getattr(exc, "detail", None)
        code = detail.code if hasattr(detail, "code") else getattr(exc, "default_code", "error")
        response.data = envelope(str(code), str(detail) if detail is not None else str(exc))
    return response


def api_not_found(request, exception=None):
    return JsonResponse(envelope("not_found", "No such API endpoint."), status=404)


def api_bad_request(request, exception=None):
    return JsonResponse(envelope("bad_request", "Bad request."), status=400)


def api_server_error(request):
    return JsonResponse(envelope("server_error", "Internal server error."), status=500)
