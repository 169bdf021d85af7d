"""A real OTLP/HTTP trace receiver on loopback: it decodes what the exporter POSTs."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import loopback_server
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Received:
    """What the receiver has been sent: decoded requests and the span names in them."""

    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[tuple[str, dict[str, Any], Any]]:
        """(service.name, resource attributes, span) for every span received."""
        out = []
        with self.lock:
            for request in self.requests:
                for rs in request.resource_spans:
                    attrs = {a.key: _value(a.value) for a in rs.resource.attributes}
                    for scope in rs.scope_spans:
                        out.extend((attrs.get("service.name"), attrs, s) for s in scope.spans)
        return out


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@contextmanager
def otlp_receiver(status: int = 200) -> Iterator[tuple[str, Received]]:
    """Serve POST /v1/traces on 127.0.0.1 (a free port); yields (base URL, received)."""
    received = Received(status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            with received.lock:
                received.paths.append(self.path)
            if received.status != 200:
                self.send_response(received.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.requests.append(request)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_server(Handler) as url:
        yield url, received
