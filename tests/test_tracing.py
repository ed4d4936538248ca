"""Distributed tracing (project/tracing.py): one trace from POST /api/v1/crawls/ through the
broker into a real worker's engine; off, nothing is instrumented.

The two sides are two processes. This one (the API, through the Django test client) records its
spans with the SDK's in-memory exporter. The worker is a real Celery worker process with
OTEL_EXPORTER_OTLP_ENDPOINT pointed at a local OTLP sink (bench/otlp_sink.py) in this process:
the worker runs exactly what production runs (setup after the prefork fork, BatchSpanProcessor,
the OTLP/HTTP exporter), and the test reads the decoded spans from the sink. A worker thread
inside the test process would share the in-memory exporter but would prove nothing about the
fork or the exporter.
"""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bench.otlp_sink import OtlpSink
from crawls.engine.fetch import Fetcher
from crawls.engine.scope import fetch_settings
from crawls.models import Crawl
from project import logs, tracing
from tests.crawling import start_worker, wait_for_crawl
from tests.processes import wait_until

API = "/api/v1"


@pytest.fixture
def memory_spans():
    """Tracing on in this process, its spans kept in memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()


@pytest.mark.django_db(transaction=True)
def test_one_trace_runs_from_the_api_through_the_worker_into_the_engine(
    memory_spans, api, owner, demo_source, board, isolated_queue, tmp_path
):
    with OtlpSink() as sink:
        worker = start_worker(
            isolated_queue,
            tmp_path,
            "traced",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            TRACING_CRAWL_HTTP_SPANS="true",
        )
        try:
            response = api(owner).post(f"{API}/crawls/", {"source": demo_source.pk}, format="json")
            assert response.status_code == 202, response.json()
            crawl = wait_for_crawl(Crawl.objects.get(pk=response.json()["id"]))
            assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
            wait_until(
                lambda: any(s.name == "run/crawls.run" for s in sink.snapshot()),
                what="the worker's task span",
            )
            output = worker.output()
        finally:
            worker.stop()
    # This process: the request's span, and the publish of the task under it.
    local = memory_spans.get_finished_spans()
    (server,) = [s for s in local if s.kind == SpanKind.SERVER and "crawls" in s.name]
    assert server.attributes["http.status_code"] == 202
    # Named after the route Django resolved (project/tracing.py renames it once resolved).
    assert server.name == "POST api/v1/crawls/$" == f"POST {server.attributes['http.route']}"
    (publish,) = [s for s in local if s.name == "apply_async/crawls.run"]
    assert publish.parent.span_id == server.context.span_id
    trace_id = format(server.context.trace_id, "032x")
    # The worker: the task's span continues the trace, across the broker, under the publish.
    remote = sink.snapshot()
    by_name: dict[str, list] = {}
    for span in remote:
        by_name.setdefault(span.name, []).append(span)
    (task,) = by_name["run/crawls.run"]
    assert task.service == "forest-worker"
    assert (task.trace_id, task.parent_id) == (trace_id, format(publish.context.span_id, "016x"))
    batches, pages, stores = by_name["crawl.batch"], by_name["crawl.page"], by_name["crawl.store"]
    assert {b.parent_id for b in batches} == {task.span_id}
    assert {s.parent_id for s in stores} == {task.span_id}
    assert len(stores) >= len(batches) >= 1
    # One page span per page fetched, under its batch, with what a page may say and no more.
    assert len(pages) == crawl.pages_done + crawl.pages_failed
    assert {p.parent_id for p in pages} <= {b.span_id for b in batches}
    assert sum(b.attributes["pages"] for b in batches) == len(pages)
    host = board.base_url.split("//")[1].split(":")[0]
    assert {p.attributes["host"] for p in pages} == {host}
    assert {p.attributes["kind"] for p in pages} == {"listing", "detail"}
    assert {p.attributes["status"] for p in pages} >= {200, 404}
    assert all(p.attributes["bytes"] > 0 for p in pages if p.attributes["status"] == 200)
    # The aiohttp client's request spans under the page spans; the store's SQL under the store.
    page_ids = {p.span_id for p in pages}
    http_spans = [s for s in remote if s.parent_id in page_ids]
    assert len(http_spans) >= len(pages) - 1  # a page refused by robots.txt sends nothing
    store_ids = {s.span_id for s in stores}
    statements = [s for s in remote if s.parent_id in store_ids]
    systems = [
        s.attributes.get("db.system.name", s.attributes.get("db.system")) for s in statements
    ]
    # The store's SQL; and the Redis publishes of its events (project's realtime layer).
    assert set(systems) == {"postgresql", "redis"}
    assert any(s.name.startswith("INSERT") for s in statements)
    # The whole crawl is one trace.
    assert {s.trace_id for s in remote if s.name.startswith(("crawl.", "run/"))} == {trace_id}
    # The worker's log lines carry the trace beside the task id.
    batch_lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and "batch of" in line
    ]
    assert batch_lines
    assert {line["trace_id"] for line in batch_lines} == {trace_id}
    assert {line["span_id"] for line in batch_lines} <= {
        t.span_id for t in by_name["run/crawls.run"]
    }


def test_page_spans_never_record_a_query_string(memory_spans, demo_source, board, settings):
    settings.TRACING_CRAWL_HTTP_SPANS = True
    secret_url = f"{board.base_url}/notices?session=s3cret&token=t0ken"

    async def fetch():
        async with Fetcher(fetch_settings(demo_source)) as fetcher:
            return await tracing.page(fetcher.get(secret_url), url=secret_url, kind="list")

    with tracing.span("crawl.batch"):
        response = asyncio.run(fetch())
    assert response.status == 200
    spans = memory_spans.get_finished_spans()
    (page,) = [s for s in spans if s.name == "crawl.page"]
    assert dict(page.attributes) == {
        "host": "127.0.0.1",
        "kind": "listing",
        "status": 200,
        "bytes": len(response.body),
    }
    client = [s for s in spans if s.parent is not None and s.parent.span_id == page.context.span_id]
    assert client
    recorded = [str(v) for s in client for v in s.attributes.values()]
    assert any("/notices" in v for v in recorded)  # the URL is there, without its query
    assert not [v for v in recorded if "s3cret" in v or "t0ken" in v or "?" in v]


def test_url_without_query_keeps_neither_query_fragment_nor_credentials():
    assert (
        tracing.url_without_query("https://user:pw@example.org:8443/a/b?key=1#top")
        == "https://example.org:8443/a/b"
    )


def test_with_the_endpoint_unset_nothing_is_instrumented(settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = ""
    assert tracing.setup("web") is False
    assert not tracing.enabled()
    assert not DjangoInstrumentor().is_instrumented_by_opentelemetry
    assert not CeleryInstrumentor().is_instrumented_by_opentelemetry
    assert not hasattr(psycopg.connect, "__wrapped__")
    assert "opentelemetry" not in " ".join(settings.MIDDLEWARE)
    with tracing.span("crawl.batch") as current:
        assert current is None
        assert logs.trace_ids() == ("-", "-")


@pytest.mark.django_db
def test_request_spans_keep_the_path_not_the_query_string(memory_spans, client):
    response = client.get("/accounts/login/?next=/bids/&token=s3cret")
    assert response.status_code == 200
    (server,) = [s for s in memory_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.name == "GET accounts/login/"
    assert server.attributes["http.target"] == "/accounts/login/"
    assert server.attributes["http.url"] == "http://testserver/accounts/login/"
    assert not [v for v in server.attributes.values() if "s3cret" in str(v)]


def test_the_crawlers_requests_are_not_spans_of_their_own_by_default(
    memory_spans, demo_source, board
):
    async def fetch():
        async with Fetcher(fetch_settings(demo_source)) as fetcher:
            return await tracing.page(
                fetcher.get(f"{board.base_url}/notices"), url=board.base_url, kind="list"
            )

    with tracing.span("crawl.batch"):
        response = asyncio.run(fetch())
    assert response.status == 200
    spans = {s.name: s for s in memory_spans.get_finished_spans()}
    assert sorted(spans) == ["crawl.batch", "crawl.page"]
    # Made once the page is in, the page's span still sits under its batch and spans its fetch.
    batch, page = spans["crawl.batch"], spans["crawl.page"]
    assert page.parent is not None
    assert page.parent.span_id == batch.context.span_id
    assert page.context.trace_id == batch.context.trace_id
    assert batch.start_time <= page.start_time < page.end_time <= batch.end_time
    assert dict(page.attributes) == {
        "host": "127.0.0.1", "kind": "listing", "status": 200, "bytes": len(response.body)
    }  # fmt: skip


def test_a_page_whose_fetch_raises_still_has_its_span(memory_spans):
    async def failing():
        raise asyncio.CancelledError

    async def fetch():
        return await tracing.page(failing(), url="https://example.org/a?b=c", kind="item")

    with tracing.span("crawl.batch"), pytest.raises(asyncio.CancelledError):
        asyncio.run(fetch())
    (page,) = [s for s in memory_spans.get_finished_spans() if s.name == "crawl.page"]
    assert dict(page.attributes) == {
        "host": "example.org", "kind": "detail", "error.class": "CancelledError"
    }  # fmt: skip


def test_the_resource_is_hashed_once_and_stays_equal_to_its_original():
    original = Resource.create({"service.name": "forest-test", "forest.role": "worker"})
    hashed = tracing._resource_hashed_once(original)
    assert hashed == original
    assert original == hashed
    assert hash(hashed) == hash(original) == hash(hashed)
    assert hashed.attributes == original.attributes
    assert {hashed: 1}[original] == 1  # the encoder groups spans by it
