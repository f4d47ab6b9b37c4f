"""A private `redis-server` (Debian's `redis-server` package, `scripts/setup.sh apt`) on 127.0.0.1
on a free port, for the `kv_redis` backend: no persistence, no config file, stopped (and its
folder removed) when the `with` block ends. `RedisServer.command(...)` speaks RESP to it for
checks, through the standard library only.

    with RedisServer() as redis:
        redis.port, redis.command("DBSIZE")
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ogx_harness import free_port


class RedisUnavailable(RuntimeError):
    pass


class RedisServer:
    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        if self.binary is None:
            raise RedisUnavailable(
                "redis-server is not installed: run scripts/setup.sh apt (Debian's redis-server package)")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.folder: str | None = None

    def __enter__(self) -> "RedisServer":
        self.folder = tempfile.mkdtemp(prefix="ogx-redis-")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.folder, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RedisUnavailable(f"redis-server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def command(self, *words: str):
        """Sends one command; answers its reply (str, int, None, bytes or a list)."""
        request = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(request.encode())
            reader = conn.makefile("rb")
            return _reply(reader)


def _reply(reader):
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if int(rest) < 0:
            return None
        data = reader.read(int(rest) + 2)
        return data[:-2]
    if kind == b"*":
        return None if int(rest) < 0 else [_reply(reader) for _ in range(int(rest))]
    raise RuntimeError(f"not RESP: {line!r}")
