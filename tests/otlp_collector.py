"""An OTLP/HTTP trace receiver on 127.0.0.1 for the tracing tests: it takes
`POST /v1/traces` bodies, decodes them with `opentelemetry-proto` (the OpenTelemetry project's
own generated classes, not ogx's encoder) and keeps every span with its resource. It can answer
an error status, or hang until it is stopped, to stand in for a broken collector."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from loopback_server import LoopbackHandler, LoopbackServer


@dataclass
class Export:
    """One export as received: its path, headers (lower-case names) and decoded body."""
    path: str
    headers: dict[str, str]
    request: ExportTraceServiceRequest


@dataclass
class Span:
    """A received span, flattened: ids in hex, attributes as a plain dict."""
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    start: int
    end: int
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


def _value(any_value) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(key_values) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


class _Handler(LoopbackHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_POST(self) -> None:
        body = self._read_body()
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        server: _Server = self.server  # type: ignore[assignment]
        with server.lock:
            server.exports.append(Export(self.path, {k.lower(): v for k, v in self.headers.items()},
                                         request))
        if server.hang:
            server.released.wait(60)
        self.send_response(server.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, hang: bool):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.hang = hang
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.exports: list[Export] = []


class OtlpCollector(LoopbackServer):
    """`with OtlpCollector() as c:` ... `c.spans()`. `status` is what every export is answered;
    `hang=True` holds every export unanswered until `stop()`."""
    thread_name = "otlp-collector"

    def __init__(self, status: int = 200, hang: bool = False):
        super().__init__(_Server(status, hang), "127.0.0.1")

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    @property
    def requests(self) -> list[Export]:
        with self._server.lock:
            return list(self._server.exports)

    def spans(self) -> list[Span]:
        out = []
        for export in self.requests:
            for resource_spans in export.request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        out.append(Span(
                            trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(), name=s.name, kind=s.kind,
                            attributes=_attributes(s.attributes), status_code=s.status.code,
                            status_message=s.status.message, start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano, resource=resource,
                            scope=scope_spans.scope.name))
        return out

    def stop(self) -> None:
        self._server.released.set()
        super().stop()

    def _close_connections(self) -> None:
        pass

    def __enter__(self) -> "OtlpCollector":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
