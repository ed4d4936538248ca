"""Distributed tracing with OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

setup(role) runs once per process, after any fork (project/wsgi.py, project/asgi.py, and the
Celery worker's pool children and beat in project/celery.py). On: one TracerProvider exporting
over OTLP/HTTP in batches, and the instrumentations for Django, Celery (the trace context rides
in the task message's headers), psycopg, redis and the aiohttp client (URLs without their query
string). Off: no provider, nothing instrumented, span() is a null context. docs/tracing.md.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)

TRACER_NAME = "forest"
# The engine's page kinds, as a trace shows them.
PAGE_KINDS = {"item": "detail", "list": "listing"}

_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_instrumentors: list[BaseInstrumentor] = []

T = TypeVar("T")


def enabled() -> bool:
    """Whether this process traces (setup() or install() ran)."""
    return _tracer is not None


def url_without_query(url: str) -> str:
    """`url` without its query string, fragment or credentials: what a span may record."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _strip_url(url: Any) -> str:
    # The aiohttp instrumentation's url_filter: it hands us a yarl.URL.
    return url_without_query(str(url))


def _request_span_without_query(span: trace.Span, request: Any, _response: Any) -> None:
    # A request's span keeps its path, not its query string (filters, cursors, a next=).
    if not request.META.get("QUERY_STRING") or not span.is_recording():
        return
    recorded = getattr(span, "attributes", None) or {}
    span.set_attribute("http.target", request.path)
    if recorded.get("http.url"):
        span.set_attribute("http.url", url_without_query(str(recorded["http.url"])))


def setup(role: str) -> bool:
    """Trace this process when OTEL_EXPORTER_OTLP_ENDPOINT is set; True when it now does.
    Call once per process, after any fork (an exporter's thread does not survive a fork)."""
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if not endpoint or _provider is not None:
        return False
    # Imported only when tracing is on (off costs nothing, not even the imports).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    name = settings.OTEL_SERVICE_NAME or f"forest-{role}"
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the sampler comes from OTEL_TRACES_SAMPLER.
    created = Resource.create({"service.name": name, "forest.role": role})
    provider = TracerProvider(resource=_resource_hashed_once(created))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    install(provider)
    logger.info("tracing on: %s exports to %s", name, endpoint)
    return True


def _resource_hashed_once(resource: Resource) -> Resource:
    """`resource`, hashed once: the OTLP encoder groups every exported span by its resource,
    and Resource.__hash__ serialises the attributes to JSON on each call (a sixth of encoding a
    span; open-telemetry/opentelemetry-python#5577 calls it wasteful). Its attributes are
    immutable, so the hash cannot go stale."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    class HashedOnce(Resource):
        @functools.cached_property
        def _hash(self) -> int:
            return super().__hash__()

        def __hash__(self) -> int:
            return self._hash

        __eq__ = Resource.__eq__

    return HashedOnce(resource.attributes, resource.schema_url)


def install(provider: TracerProvider) -> None:
    """Instrument the libraries and the engine's spans onto `provider` (setup(); tests pass a
    provider with an in-memory exporter)."""
    from opentelemetry.instrumentation.aiohttp_client import (  # noqa: PLC0415
        AioHttpClientInstrumentor,
    )
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME)
    hooks: list[tuple[BaseInstrumentor, dict[str, Any]]] = [
        (DjangoInstrumentor(), {"response_hook": _request_span_without_query}),
        (CeleryInstrumentor(), {}),  # type: ignore[no-untyped-call]
        (PsycopgInstrumentor(), {"skip_dep_check": True}),
        (RedisInstrumentor(), {}),
        (AioHttpClientInstrumentor(), {"url_filter": _strip_url}),
    ]
    for instrumentor, options in hooks:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider, **options)
            _instrumentors.append(instrumentor)
    _name_request_spans_after_the_route()


def _name_request_spans_after_the_route() -> None:
    """The Django instrumentation names a request's span by resolving its URL once more, before
    Django does (a tenth of what it costs a request): name it after the method, and after the
    route once Django has resolved it. Private to opentelemetry-instrumentation-django 0.66b1
    (pinned); tests/test_tracing.py asserts the names."""
    from opentelemetry.instrumentation.django.middleware import (  # noqa: PLC0415
        otel_middleware,
    )

    middleware: Any = otel_middleware._DjangoMiddleware
    if getattr(middleware, "_forest_named", False):
        return
    process_view = middleware.process_view

    def process_view_naming(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        result = process_view(self, request, *args, **kwargs)
        current = request.META.get(self._environ_span_key)
        route = getattr(getattr(request, "resolver_match", None), "route", "")
        if current is not None and route and current.is_recording():
            current.update_name(f"{request.method} {route}")
        return result

    middleware._get_span_name = staticmethod(lambda request: request.method)
    middleware.process_view = process_view_naming
    middleware._forest_named = True


def uninstall() -> None:
    """Undo install() (tests)."""
    global _tracer, _provider
    for instrumentor in reversed(_instrumentors):
        instrumentor.uninstrument()
    _instrumentors.clear()
    _tracer = _provider = None


def flush() -> None:
    """Send the spans still buffered (a prefork child may exit without running atexit)."""
    if _provider is not None:
        _provider.force_flush()


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[trace.Span | None]:
    """A span around a block (`with tracing.span("crawl.batch", pages=20):`); a null context
    when tracing is off."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(name, attributes=attributes)


def traced(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator: a span named `name` around every call."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            with span(name):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def crawl_session(session: Any) -> None:
    """The crawler's aiohttp session: without the client instrumentation's spans unless
    TRACING_CRAWL_HTTP_SPANS (they cost more than the rest of a page's tracing, and would send
    our traceparent to every site crawled); crawl.page spans stay."""
    if _tracer is None or settings.TRACING_CRAWL_HTTP_SPANS:
        return
    from opentelemetry.instrumentation.aiohttp_client import (  # noqa: PLC0415
        AioHttpClientInstrumentor,
    )

    AioHttpClientInstrumentor.uninstrument_session(session)


async def page(fetch: Awaitable[T], *, url: str, kind: str) -> T:
    """Await one page's fetch in a span of its own: host, kind, status and bytes, never the URL
    (its query string may hold a session or a secret's trace).

    The span is the current one during the fetch only when the HTTP client's spans are wanted
    under it (TRACING_CRAWL_HTTP_SPANS); otherwise nothing runs in it, and it is made once the
    page is in, with the fetch's start time and every attribute at once: no context switch, a
    third of what a page's span costs (docs/performance.md, "Tracing")."""
    if _tracer is None:
        return await fetch
    attributes: dict[str, Any] = {
        "host": urlsplit(url).hostname or "",
        "kind": PAGE_KINDS.get(kind, kind),
    }
    if settings.TRACING_CRAWL_HTTP_SPANS:
        with _tracer.start_as_current_span("crawl.page", attributes=attributes) as current:
            response = await fetch
            current.set_attributes(_page_result(response))
            return response
    started = time.time_ns()
    try:
        response = await fetch
    except BaseException as exc:  # a cancel, or a fetch that raised: its span says so
        attributes["error.class"] = type(exc).__name__
        _tracer.start_span("crawl.page", attributes=attributes, start_time=started).end()
        raise
    # The parent is the batch's span: the context this coroutine's task was created in.
    attributes.update(_page_result(response))
    _tracer.start_span("crawl.page", attributes=attributes, start_time=started).end()
    return response


def _page_result(response: Any) -> dict[str, Any]:
    # response: crawls.engine.fetch.Response (project does not import the engine).
    result: dict[str, Any] = {"status": response.status or 0, "bytes": len(response.body or b"")}
    if response.error_class:
        result["error.class"] = response.error_class
    return result
