"""The life cycle shared by the test doubles (`mock_openai`, `mock_bedrock`): a
`ThreadingHTTPServer` on 127.0.0.1 served from a background thread until `stop()`, usable as a
context manager, with the requests it recorded. Standard library only, so the doubles also run
as plain scripts."""
from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any


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
