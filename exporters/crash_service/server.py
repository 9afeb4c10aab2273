"""The crash service: an OTLP/HTTP log receiver with a JSON API and metrics.

Routes:

- ``POST /v1/logs``: OTLP/HTTP logs (protobuf or JSON, optionally gzip). Answers
  200 with an ``ExportLogsServiceResponse`` (``partial_success`` filled in when
  records were rejected), 400 for an undecodable body, 401 without a valid
  token, 411 without ``Content-Length``, 413 over the size limit, 415 for an
  unknown media type or encoding, 503 when the store cannot be written (the
  exporter retries). See https://opentelemetry.io/docs/specs/otlp/#otlphttp-response.
- ``GET /api/groups``, ``GET /api/groups/<id>``, ``PATCH /api/groups/<id>``.
- ``GET /metrics`` (Prometheus text format) and ``GET /healthz``: no token.

The token is compared in constant time (``hmac.compare_digest``). Bodies are
refused by ``Content-Length`` before they are read, and gzip is inflated in
bounded steps (see ``otlp.decode_body``).
"""

from __future__ import annotations

import hmac
import http.server
import json
import logging
import re
import sqlite3
import threading
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from exporters.crash_service.grouping import CrashGrouper, Scrubbing
from exporters.crash_service.ingest import CrashIngestor
from exporters.crash_service.metrics import CrashMetrics
from exporters.crash_service.otlp import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    PayloadError,
    decode_body,
    decode_logs_request,
    media_type,
)
from exporters.crash_service.settings import CrashServiceSettings
from exporters.crash_service.store import STATUSES, CrashStore
from exporters.symbolication import Symbolicator
from otel_processors._guard import record_failure

__all__ = ["CrashService"]

_logger = logging.getLogger(__name__)

_GROUP_PATH = re.compile(r"^/api/groups/(?P<id>[0-9a-f]{32})$")
_MAX_API_BODY_BYTES: Final = 64 * 1024
_SOCKET_TIMEOUT_SECONDS: Final = 30.0
_POLL_INTERVAL_SECONDS: Final = 0.05


class CrashService:
    """Run the crash service in this process, on a background thread.

    Args:
        settings: where to listen, the store, the token and the limits.
        scrubber: removes patient identifiers; the project's ``Scrubber`` by
            default.
        registry: the Prometheus registry; a new one by default.

    Raises:
        ConfigurationError: from the settings.
    """

    def __init__(
        self,
        settings: CrashServiceSettings,
        *,
        scrubber: Scrubbing | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._scrubber = scrubber
        self._registry = registry
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: CrashStore | None = None
        self._symbolicator: Symbolicator | None = None
        self.metrics: CrashMetrics | None = None
        self.ingestor: CrashIngestor | None = None

    @property
    def store(self) -> CrashStore:
        """The store of crash groups (open once the service has started).

        Raises:
            RuntimeError: the service has not been started.
        """
        if self._store is None:
            msg = "the crash service has not been started"
            raise RuntimeError(msg)
        return self._store

    def start(self) -> tuple[str, int]:
        """Open the store, bind the socket and serve on a background thread.

        Returns:
            The bound host and port (useful with port 0).

        Raises:
            RuntimeError: the service is already running.
            ConfigurationError: the scrubber's configuration file is invalid.
            ValueError: a symbol source is neither a folder nor a URL.
            OSError: the address cannot be bound.
            sqlite3.DatabaseError: the store cannot be opened.
        """
        if self._server is not None:
            msg = "the crash service is already running"
            raise RuntimeError(msg)

        # Everything that can refuse the configuration comes before the store opens.
        scrubber = self._scrubber if self._scrubber is not None else _default_scrubber()
        symbolicator = (
            Symbolicator(
                self.settings.symbol_sources,
                cache_dir=self.settings.symbol_cache_dir,
                miss_ttl_seconds=self.settings.symbol_miss_ttl_seconds,
            )
            if self.settings.symbol_sources
            else None
        )
        grouper = CrashGrouper(
            scrubber,
            symbolicator=symbolicator,
            title_max_chars=self.settings.title_max_chars,
        )

        store = CrashStore(self.settings.db_path)
        try:
            metrics = CrashMetrics(
                store.count_by_status,
                max_service_labels=self.settings.max_service_labels,
                registry=self._registry,
            )
            server = _Server((self.settings.host, self.settings.port), _Handler)
        except BaseException:
            store.close()
            raise
        self._store, self.metrics, self._symbolicator = store, metrics, symbolicator
        self.ingestor = CrashIngestor(store, grouper, metrics)
        server.service = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_SECONDS},
            name="crash-service",
            daemon=True,
        )
        self._thread.start()
        host, port = server.server_address[:2]
        _logger.info("Crash service listening on %s:%s", host, port)
        return str(host), int(port)

    @property
    def endpoint(self) -> str:
        """The service's base URL, e.g. ``http://127.0.0.1:4319``.

        Raises:
            RuntimeError: the service has not been started.
        """
        if self._server is None:
            msg = "the crash service has not been started"
            raise RuntimeError(msg)
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the store."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._symbolicator is not None:
            self._symbolicator.close()
        if self._store is not None:
            self._store.close()
        self._server, self._thread, self._store = None, None, None

    def serve_forever(self) -> None:
        """Block until interrupted (the command line uses this)."""
        thread = self._thread
        if thread is None:
            msg = "the crash service has not been started"
            raise RuntimeError(msg)
        while thread.is_alive():
            thread.join(timeout=1.0)

    def is_authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the configured token."""
        token = self.settings.token
        if token is None:
            return True
        scheme, _, credentials = (header or "").partition(" ")
        # The scheme is case-insensitive (RFC 7235, section 2.1).
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(
            credentials.strip().encode("utf-8"), token.encode("utf-8")
        )


def _default_scrubber() -> Scrubbing:
    from otel_processors.scrubber import Scrubber

    return Scrubber.from_env()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    service: CrashService


class _Handler(http.server.BaseHTTPRequestHandler):
    """One request; every answer is complete, so keep-alive stays in sync."""

    protocol_version = "HTTP/1.1"
    server_version = "healthai-crash-service"
    sys_version = ""
    timeout = _SOCKET_TIMEOUT_SECONDS
    server: _Server

    @property
    def service(self) -> CrashService:
        return self.server.service

    def log_message(self, format: str, *args: Any) -> None:
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("%s %s", self.address_string(), format % args)

    # Routing.

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/metrics":
            metrics = self.service.metrics
            assert metrics is not None
            self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/api/groups" or path.startswith("/api/groups/"):
            if self._authorize():
                self._get_groups(path)
        else:
            self._send_json(404, {"error": f"no route for GET {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path != "/v1/logs":
            self._discard_body_or_close()
            self._send_json(404, {"error": f"no route for POST {path}"})
            return
        self._post_logs()

    def do_PATCH(self) -> None:
        path = urlsplit(self.path).path
        match = _GROUP_PATH.match(path)
        if match is None:
            self._discard_body_or_close()
            self._send_json(404, {"error": f"no route for PATCH {path}"})
            return
        if self._authorize():
            self._patch_group(match["id"])

    # OTLP.

    def _post_logs(self) -> None:
        settings = self.service.settings
        kind = media_type(self.headers.get("Content-Type"))
        try:
            if not self.service.is_authorized(self.headers.get("Authorization")):
                # Unauthenticated bodies are not read; the connection cannot be reused.
                self.close_connection = True
                raise PayloadError("unauthorized", 401, "missing or wrong bearer token")
            raw = self._read_body(settings.max_body_bytes)
            data = decode_body(
                raw, self.headers.get("Content-Encoding"), settings.max_body_bytes
            )
            request = decode_logs_request(data, self.headers.get("Content-Type"))
        except PayloadError as exc:
            self._count_rejected(exc.reason)
            self._send_otlp_error(kind, exc)
            return

        ingestor = self.service.ingestor
        assert ingestor is not None
        try:
            result = ingestor.ingest(request)
        except sqlite3.Error as exc:
            record_failure("crash_service.store", exc)
            error = PayloadError("processing_error", 503, "crash store unavailable")
            self._count_rejected(error.reason)
            self._send_otlp_error(kind, error, retry_after_seconds=5)
            return

        response = ExportLogsServiceResponse()
        if result.rejected:
            response.partial_success.rejected_log_records = result.rejected
            response.partial_success.error_message = result.error_message
        if kind == CONTENT_TYPE_JSON:
            body = json_format.MessageToJson(response).encode("utf-8")
            self._send(200, body, CONTENT_TYPE_JSON)
        else:
            self._send(200, response.SerializeToString(), CONTENT_TYPE_PROTOBUF)

    def _send_otlp_error(
        self, kind: str, error: PayloadError, retry_after_seconds: int | None = None
    ) -> None:
        status = Status(code=_grpc_code(error.status), message=error.message)
        headers: dict[str, str] = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="crash-service"'
        if retry_after_seconds is not None:
            headers["Retry-After"] = str(retry_after_seconds)
        if kind == CONTENT_TYPE_JSON:
            body = json_format.MessageToJson(status).encode("utf-8")
            self._send(error.status, body, CONTENT_TYPE_JSON, headers)
        else:
            self._send(
                error.status, status.SerializeToString(), CONTENT_TYPE_PROTOBUF, headers
            )

    # JSON API.

    def _get_groups(self, path: str) -> None:
        store = self.service.store
        if path == "/api/groups":
            query = parse_qs(urlsplit(self.path).query)
            try:
                groups = store.list_groups(
                    status=_single(query, "status"),
                    service=_single(query, "service"),
                    limit=int(_single(query, "limit") or 100),
                )
            except ValueError as exc:
                self._bad_request(str(exc))
                return
            payload = {"groups": [group.to_json() for group in groups]}
            self._send_json(200, payload)
            return

        match = _GROUP_PATH.match(path)
        group = store.get_group(match["id"]) if match is not None else None
        if group is None:
            self._send_json(404, {"error": "no such group"})
            return
        self._send_json(200, group.to_json(include_sample=True))

    def _patch_group(self, group_id: str) -> None:
        try:
            if media_type(self.headers.get("Content-Type")) != CONTENT_TYPE_JSON:
                raise PayloadError(
                    "bad_request", 415, f"send {CONTENT_TYPE_JSON} to change a group"
                )
            document = json.loads(self._read_body(_MAX_API_BODY_BYTES))
        except PayloadError as exc:
            self._count_rejected(exc.reason)
            self._send_json(exc.status, {"error": exc.message})
            return
        except ValueError:
            self._bad_request("body is not valid JSON")
            return

        status = document.get("status") if isinstance(document, dict) else None
        if set(document if isinstance(document, dict) else ()) != {"status"}:
            self._bad_request('body must be {"status": ...} and nothing else')
            return
        if status not in STATUSES:
            self._bad_request(f"status must be one of {', '.join(STATUSES)}")
            return
        group = self.service.store.set_status(group_id, status)
        if group is None:
            self._send_json(404, {"error": "no such group"})
            return
        self._send_json(200, group.to_json())

    # Plumbing.

    def _authorize(self) -> bool:
        if self.service.is_authorized(self.headers.get("Authorization")):
            return True
        self._discard_body_or_close()
        self._count_rejected("unauthorized")
        self._send_json(
            401,
            {"error": "missing or wrong bearer token"},
            {"WWW-Authenticate": 'Bearer realm="crash-service"'},
        )
        return False

    def _read_body(self, limit: int) -> bytes:
        """Read the body announced by ``Content-Length``, refusing it past ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise PayloadError("bad_request", 411, "send a Content-Length header")
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header is not None else 0
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise PayloadError("bad_request", 400, "invalid Content-Length header")
        if length > limit:
            # The body stays unread, so the connection cannot be reused.
            self.close_connection = True
            msg = f"body of {length} bytes exceeds the limit of {limit} bytes"
            raise PayloadError("too_large", 413, msg)

        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise PayloadError("bad_request", 400, "body shorter than Content-Length")
        return body

    def _discard_body_or_close(self) -> None:
        length_header = self.headers.get("Content-Length", "0")
        if length_header.isdigit() and int(length_header) <= _MAX_API_BODY_BYTES:
            self.rfile.read(int(length_header))
        else:
            self.close_connection = True

    def _bad_request(self, message: str) -> None:
        self._count_rejected("bad_request")
        self._send_json(400, {"error": message})

    def _count_rejected(self, reason: str) -> None:
        metrics = self.service.metrics
        if metrics is not None:
            metrics.count_rejected(reason)

    def _send_json(
        self, status: int, payload: object, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        self._send(status, body, CONTENT_TYPE_JSON, headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        msg = f"query parameter {name!r} given more than once"
        raise ValueError(msg)
    return values[0]


def _grpc_code(http_status: int) -> int:
    """The gRPC status code matching an HTTP status (google.rpc.Code)."""
    return {400: 3, 401: 16, 411: 3, 413: 8, 415: 3, 503: 14}.get(http_status, 2)
