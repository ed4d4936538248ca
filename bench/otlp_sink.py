"""A local OTLP/HTTP trace sink: accepts what OTLPSpanExporter sends to <endpoint>/v1/traces,
decodes it and keeps the spans (tests read them) or only counts them (benchmarks).

It stands in for a collector, so that the processes under test or measure run the real exporter
path: BatchSpanProcessor → protobuf encoding → HTTP POST. In a thread (OtlpSink) or its own
process: `python -m bench.otlp_sink --port 4318`.
"""

from __future__ import annotations

import argparse
import gzip
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class SpanRecord:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[SpanRecord]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            spans.extend(
                SpanRecord(
                    service=service,
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex(),
                    attributes={a.key: _value(a.value) for a in span.attributes},
                )
                for span in scope_spans.spans
            )
    return spans


class OtlpSink:
    """The sink on 127.0.0.1:`port` (0: any free port) in a daemon thread; `keep`: keep the
    decoded spans (else count them). Use as a context manager."""

    def __init__(self, port: int = 0, *, keep: bool = True):
        self.keep = keep
        self.spans: list[SpanRecord] = []
        self.count = 0
        self.names: Counter[str] = Counter()  # spans received, by name
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                sink.received(decode(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def received(self, spans: list[SpanRecord]) -> None:
        with self._lock:
            self.count += len(spans)
            self.names.update(span.name for span in spans)
            if self.keep:
                self.spans.extend(spans)

    def snapshot(self) -> list[SpanRecord]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    with OtlpSink(args.port, keep=False) as sink:
        print(f"OTLP sink at {sink.endpoint}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
