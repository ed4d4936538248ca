"""One structured format: JSON lines with the request id (and crawl id) on every line."""

import io
import json
import logging
import logging.config

import pytest
from opentelemetry.sdk.trace import TracerProvider

from project.logs import crawl_id_var, logging_config, request_id_var


@pytest.fixture
def json_log(settings):
    """The JSON logging configuration, its console handler writing to a buffer."""
    logging.config.dictConfig(logging_config(level="INFO", fmt="json"))
    (handler,) = logging.getLogger().handlers
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)
    logging.config.dictConfig(settings.LOGGING)


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db
def test_access_line_carries_the_clients_request_id(client, json_log):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    access = [line for line in lines(json_log) if line["logger"] == "forest.access"]
    assert access[-1]["request_id"] == "abc-123"
    assert access[-1]["message"].startswith("GET /accounts/login/ 200 ")
    assert {"time", "level", "crawl_id", "process"} <= set(access[-1])


@pytest.mark.django_db
def test_a_malformed_request_id_is_replaced(client, json_log):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="no spaces\nor newlines")
    generated = response["X-Request-ID"]
    assert len(generated) == 32
    assert all(c in "0123456789abcdef" for c in generated)
    assert lines(json_log)[-1]["request_id"] == generated


def test_lines_outside_a_request_carry_the_crawl_id_when_set(json_log):
    token = crawl_id_var.set("42")
    try:
        logging.getLogger("crawls.engine").info("fetched %s", "https://example.org/")
    finally:
        crawl_id_var.reset(token)
    line = lines(json_log)[-1]
    assert (line["crawl_id"], line["request_id"], line["message"]) == (
        "42",
        "-",
        "fetched https://example.org/",
    )


@pytest.fixture
def text_log(settings):
    """The text logging configuration, its console handler writing to a buffer."""
    logging.config.dictConfig(logging_config(level="INFO", fmt="text"))
    (handler,) = logging.getLogger().handlers
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)
    logging.config.dictConfig(settings.LOGGING)


def _span_ids(span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def test_json_lines_carry_the_trace_and_span_of_the_current_span(json_log):
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("crawls.engine")
    with tracer.start_as_current_span("crawl.batch") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = lines(json_log)[-2:]
    assert (inside["trace_id"], inside["span_id"]) == _span_ids(span)
    assert (outside["trace_id"], outside["span_id"]) == ("-", "-")
    assert inside["request_id"] == "-"


def test_text_lines_carry_the_trace_and_span_beside_the_request_id(text_log):
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("crawls.engine")
    token = request_id_var.set("task-1")
    try:
        with tracer.start_as_current_span("crawl.page") as span:
            log.info("inside")
        log.info("outside")
    finally:
        request_id_var.reset(token)
    inside, outside = text_log.getvalue().splitlines()[-2:]
    trace_id, span_id = _span_ids(span)
    assert f"[req=task-1 crawl=- trace={trace_id} span={span_id}] inside" in inside
    assert "[req=task-1 crawl=- trace=- span=-] outside" in outside
