"""What the test doubles (`mock_openai`, `mock_bedrock`) share: the life cycle of a
`ThreadingHTTPServer` on 127.0.0.1 served from a background thread until `stop()`, usable as a
context manager, with the requests it recorded; and the request handler's plumbing (reading a
plain or chunked body, JSON answers, chunked SSE). Standard library only, so the doubles also
run as plain scripts."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def text_of(content: Any) -> str:
    """A chat message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler plumbing of the doubles."""
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_sse(self, payload: str) -> None:
        data = f"data: {payload}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_sse(self) -> None:
        """`data: [DONE]`, then the end of the chunked body."""
        self._send_sse("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class LoopbackServer:
    """Subclasses set `self._server` (with `server_address`) and implement `requests`."""

    thread_name = "loopback-server"

    def __init__(self, server: ThreadingHTTPServer, host: str) -> None:
        self._server = server
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Any]:
        raise NotImplementedError

    def requests_to(self, path: str) -> list[Any]:
        return [r for r in self.requests if r.path == path]

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._close_connections()
        self._server.server_close()

    def serve_until_interrupted(self) -> None:
        """Serves in the calling thread until Ctrl-C (the doubles run as scripts this way)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._close_connections()
            self._server.server_close()

    def _close_connections(self) -> None:
        """Drops connections still open (the default server keeps none)."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
