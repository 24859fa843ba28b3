"""A threaded HTTP server on 127.0.0.1 that the provider fakes build on, with injectable failures.

Each fake answers in its provider's real wire format; ``fail_next`` makes the next request(s)
fail the way real servers and networks do: an HTTP status (401, 429 with Retry-After, 500),
a hang past the client's read timeout, a truncated JSON body, or a body over the size limit.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Failure:
    mode: str  # "status", "hang", "drip", "truncate", "oversize"; "pass" answers normally (to fail a later request)
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 5.0
    size: int = 0
    chunked: bool = False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeProviderServer:
    """Subclasses implement ``answer(request) -> Reply`` and ``error_body(status, message)``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: deque[Failure] = deque()
        self.delay_seconds = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without NODELAY, Nagle and delayed ACKs
                # add ~40 ms to every keep-alive request (as they would not on a real provider).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and every test stops a server.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def start(self) -> FakeProviderServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(self, mode: str, *, times: int = 1, **options: Any) -> None:
        for _ in range(times):
            self.failures.append(Failure(mode=mode, **options))

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        request = Request(
            method, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in handler.headers.items()}, body
        )
        with self._lock:
            self.requests.append(request)
            failure = self.failures.popleft() if self.failures else None
        if self.delay_seconds:
            self._stopping.wait(self.delay_seconds)
        if failure is not None and failure.mode != "pass":
            self._fail(handler, failure, request)
            return
        reply = self.answer(request)
        self._send(handler, reply.status, json.dumps(reply.body).encode(), reply.headers)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _fail(self, handler: BaseHTTPRequestHandler, failure: Failure, request: Request) -> None:
        if failure.mode == "status":
            body = failure.body if failure.body is not None else self.error_body(failure.status, "injected failure")
            self._send(handler, failure.status, json.dumps(body).encode(), failure.headers)
        elif failure.mode == "hang":
            self._stopping.wait(failure.seconds)
            handler.close_connection = True
        elif failure.mode == "truncate":
            # A well-formed HTTP response whose JSON stops half-way (a proxy cut it, a crash mid-write).
            full = json.dumps(self.answer(request).body if failure.body is None else failure.body)
            self._send(handler, 200, full[: max(1, len(full) // 2)].encode(), {})
        elif failure.mode == "oversize":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            if not failure.chunked:
                handler.send_header("Content-Length", str(failure.size))
            else:
                # No Content-Length: the client can only find out by counting what it reads.
                handler.send_header("Connection", "close")
            handler.end_headers()
            handler.close_connection = True
            chunk = b" " * 65536
            sent = 0
            try:
                while sent < failure.size:
                    piece = chunk[: min(len(chunk), failure.size - sent)]
                    handler.wfile.write(piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading at its limit, as it should
        elif failure.mode == "drip":
            # A server that answers, then sends its body one byte every ``seconds``: each read is within
            # the client's read timeout, the whole never ends in time.
            dripped = json.dumps(self.answer(request).body).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(dripped)))
            handler.end_headers()
            handler.close_connection = True
            try:
                for index in range(len(dripped)):
                    handler.wfile.write(dripped[index : index + 1])
                    handler.wfile.flush()
                    if self._stopping.wait(failure.seconds):
                        return
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up at its deadline, as it should
        else:
            raise ValueError(failure.mode)
