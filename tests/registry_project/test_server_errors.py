"""The production web server started as ``make run`` starts it: its own refusals, and Django's, are JSON."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_project import runall

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GRACEFUL_SECONDS = 3


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, list[str]]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # One worker, and a short graceful stop: a connection these cases leave half-sent (a body cut
    # short, headers never ended) holds a stopping worker for the whole of WEB_GRACEFUL_TIMEOUT.
    settings = {"WEB_CONCURRENCY": "1", "WEB_GRACEFUL_TIMEOUT": str(GRACEFUL_SECONDS)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        command = runall.children(host="127.0.0.1", port=str(port), sqlite=True)[0].command
    env = {**os.environ, **settings, "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1", "PORT": str(port)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the web server did not start")
        yield port, command
    finally:
        process.terminate()
        try:
            process.wait(timeout=GRACEFUL_SECONDS + 15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"the web server did not stop within {GRACEFUL_SECONDS + 15} s of SIGTERM")


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in {"Host": "127.0.0.1", **(headers or {})}.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    if body is not None:
        # The server may answer and close before reading it all.
        with contextlib.suppress(OSError):
            connection.send(body)
    with contextlib.closing(connection):
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("path of 10,000 characters", 414),
        ("query of 10,000 characters", 414),
        ("80 KB of headers", 431),
        ("10 MB body", 413),
        ("bad Host", 400),
        ("unknown path", 404),
    ],
)
def test_the_servers_error_answers_are_json(server: tuple[int, list[str]], case: str, expected: int) -> None:
    port, _ = server
    method, path, headers, body = "GET", "/models", {}, None
    if case == "path of 10,000 characters":
        path = "/models/" + "a" * 10_000
    elif case == "query of 10,000 characters":
        path = "/models?search=" + "a" * 10_000
    elif case == "80 KB of headers":
        headers = {f"X-Filler-{n}": "v" * 8000 for n in range(10)}
    elif case == "10 MB body":
        method, path, headers, body = "POST", "/auth/token", {"Content-Type": "application/json"}, b"{" * 10_000_000
    elif case == "bad Host":
        headers = {"Host": "evil.example"}
    else:
        path = "/no/such/path"
    status, content_type, raw = request(port, method, path, headers, body)
    assert status == expected
    assert content_type == "application/json"
    assert isinstance(json.loads(raw)["detail"], str)
