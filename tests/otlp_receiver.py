"""A loopback OTLP/HTTP receiver for tests.

It accepts ``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics`` in protobuf, as
the OpenTelemetry Collector's OTLP receiver does, decodes them with
``opentelemetry-proto`` and keeps both the decoded requests and the raw bodies,
so a test can search the exact bytes that left the process.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

_REQUESTS: dict[str, Any] = {
    "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
    "/v1/logs": logs_service_pb2.ExportLogsServiceRequest,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
_RESPONSES: dict[str, Any] = {
    "/v1/traces": trace_service_pb2.ExportTraceServiceResponse,
    "/v1/logs": logs_service_pb2.ExportLogsServiceResponse,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}


@dataclass
class Received:
    """Everything the receiver got, by path."""

    raw: dict[str, list[bytes]] = field(default_factory=dict)
    decoded: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def all_raw(self) -> bytes:
        """Every body received, concatenated."""
        with self.lock:
            return b"".join(b for bodies in self.raw.values() for b in bodies)

    def spans(self) -> list[Any]:
        """Every span received."""
        return self._items("/v1/traces", "resource_spans", "scope_spans", "spans")

    def log_records(self) -> list[Any]:
        """Every log record received."""
        return self._items("/v1/logs", "resource_logs", "scope_logs", "log_records")

    def metrics(self, name: str | None = None) -> list[Any]:
        """Every metric received, or those of one name."""
        metrics = self._items(
            "/v1/metrics", "resource_metrics", "scope_metrics", "metrics"
        )
        return [m for m in metrics if name is None or m.name == name]

    def metric_names(self) -> set[str]:
        """Names of every metric received."""
        return {metric.name for metric in self.metrics()}

    def _items(self, path: str, resource: str, scope: str, leaf: str) -> list[Any]:
        # Every OTLP request nests resource -> scope -> items the same way.
        with self.lock:
            requests = list(self.decoded.get(path, []))
        return [
            item
            for request in requests
            for resource_items in getattr(request, resource)
            for scope_items in getattr(resource_items, scope)
            for item in getattr(scope_items, leaf)
        ]


def attributes_of(item: Any) -> dict[str, Any]:
    """Decode a protobuf ``attributes`` list into a plain dict."""
    return {kv.key: any_value(kv.value) for kv in item.attributes}


def any_value(value: common_pb2.AnyValue) -> Any:
    """Decode a protobuf ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


class OTLPReceiver:
    """A receiver on 127.0.0.1 and an ephemeral port; use as a context manager."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request_type = _REQUESTS.get(self.path)
                if request_type is None:
                    self.send_error(404)
                    return
                decoded = request_type.FromString(body)
                with received.lock:
                    received.raw.setdefault(self.path, []).append(body)
                    received.decoded.setdefault(self.path, []).append(decoded)
                payload = _RESPONSES[self.path]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL to give ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def iter_strings(received: Received) -> Iterator[str]:
    """Every decoded string value in spans and logs (names, bodies, attributes)."""
    for span in received.spans():
        yield span.name
        yield span.status.message
        yield from (str(v) for v in attributes_of(span).values())
        for event in span.events:
            yield from (str(v) for v in attributes_of(event).values())
    for record in received.log_records():
        yield str(any_value(record.body))
        yield from (str(v) for v in attributes_of(record).values())
