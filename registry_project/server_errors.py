"""gunicorn's own error answers (a request line or headers over its limits, a malformed request) as JSON.

gunicorn writes those answers itself, as HTML, before the application sees the request; this
replaces the one function it writes them with (``gunicorn.util.write_error``, looked up at each
call by the worker), so they carry the API's error shape. Installed by gunicorn.conf.py.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


def install() -> None:
    util.write_error = write_json_error
