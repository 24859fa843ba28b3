"""The production web server's log cannot be forged: whatever a client sends, each line is one JSON object of ours.

The server is started as ``docker/entrypoint.sh web`` starts it (``python -m registry_project.web``, DEBUG off,
LOG_FORMAT json) on a migrated SQLite database; its stdout and stderr go to files the tests read.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.registry_project import test_server_errors
from tests.tokens import platform_token

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "log-forgery-test-jwt-secret-0123456789abcdef"
# What a client would like a log shipper to read as an entry of ours; "forged" marks it.
FORGED = '{"time":"2030-01-01 00:00:00","level":"CRITICAL","logger":"registry","message":"forged","forged":"yes"}'
# Characters that start a new line for some reader (a file, a terminal, JavaScript, str.splitlines), or repaint one.
LINE_BREAKS = {
    **{"LF": "\n", "CR": "\r", "CRLF": "\r\n", "LS": "\u2028", "PS": "\u2029", "NEL": "\x85"},
    **{"ANSI colour": "\x1b[31m", "ANSI erase line": "\x1b[2K\r", "C1 CSI": "\x9b31m"},
}


@dataclass
class Server:
    port: int
    stdout: Path
    stderr: Path

    def written(self) -> tuple[int, int]:
        return self.stdout.stat().st_size, self.stderr.stat().st_size

    def lines(self, since: tuple[int, int] = (0, 0)) -> list[str]:
        """The lines written after ``since``, stdout's then stderr's, split where any reader would split them."""
        text = ""
        for path, offset in zip((self.stdout, self.stderr), since, strict=True):
            with path.open("rb") as output:
                output.seek(offset)
                text += output.read().decode("utf-8", "replace")
        return text.splitlines()

    def lines_after(self, path: str, since: tuple[int, int] = (0, 0)) -> list[str]:
        """``GET path``, then the lines since ``since`` once its access-log line (the request's last) is written."""
        test_server_errors.request(self.port, "GET", path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.lines(since)
            if any(f"GET {path} HTTP/1.1" in line for line in lines):
                return lines
            time.sleep(0.1)
        pytest.fail(f"no access-log line for {path}:\n" + "\n".join(self.lines()[-20:]))


def server_environment(data: Path, port: int) -> dict[str, str]:
    """The environment of a production container, with throwaway secrets and SQLite in ``data``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "REDIS_", "CELERY_", "WEB_", "LOG_", "PROMETHEUS_", "OLLAMA_"))
        and not name.endswith("_API_KEY")
        and name not in {"DEBUG", "ALLOWED_HOSTS", "PLATFORM_TRUSTED_NETWORKS"}
    }
    return {
        **env,
        "DEBUG": "false",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "SECRET_KEY": "log-forgery-test-secret-key-0123456789abcdef",
        "JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": f"sqlite:///{data / 'registry.sqlite3'}",
        "REGISTRY_DATA_DIR": str(data),
        "PROMETHEUS_MULTIPROC_DIR": str(data / "prometheus"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_GRACEFUL_TIMEOUT": "3",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("log-forgery")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = server_environment(data, port)
    (data / "prometheus").mkdir()
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr.decode()[-2000:]
    running = Server(port, data / "stdout.log", data / "stderr.log")
    with running.stdout.open("wb") as stdout, running.stderr.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry_project.web"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if test_server_errors.request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the web server did not start:\n" + "\n".join(running.lines()[-20:]))
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send(port: int, head: bytes) -> None:
    """``head`` as the client wrote it, byte for byte; whether the server answers 200 or 400 does not matter here."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        while connection.recv(65536):
            pass


def raw_request(target: str, *, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in {"Host": "127.0.0.1", **(headers or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def forgeries(port: int, line_break: str) -> None:
    """``FORGED`` between two ``line_break``: in the path, the query, headers and a model's name."""
    payload = f"{line_break}{FORGED}{line_break}"
    encoded = quote(payload, safe="")
    send(port, raw_request(f"/models/x{encoded}"))
    send(port, raw_request(f"/models?search={encoded}&ordering={encoded}"))
    send(port, raw_request(f"/no/such/path{encoded}?next={encoded}"))
    # A CR or LF would end a header; what a header can carry goes raw, the rest percent-encoded.
    in_header = encoded if {"\r", "\n"} & set(line_break) else payload
    send(port, raw_request("/models", headers={"Host": f"127.0.0.1{in_header}"}))
    header_values = {"User-Agent": in_header, "Referer": f"http://127.0.0.1/{in_header}", "X-Forwarded-For": in_header}
    send(port, raw_request("/models", headers=header_values))
    send(port, raw_request(f"/models/{encoded}", headers={"X-Request-Id": in_header, "Origin": in_header}))
    token = platform_token(registry_role="editor", secret=JWT_SECRET)
    body = {"name": payload, "display_name": payload, "provider": "ollama", "model_type": "chat"}
    test_server_errors.request(
        port,
        "POST",
        "/models",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json.dumps(body, ensure_ascii=False).encode(),
    )
    test_server_errors.request(port, "GET", f"/models/{encoded}", {"Authorization": f"Bearer {token}"})


def entry(line: str) -> dict[str, Any]:
    parsed = json.loads(line)
    assert isinstance(parsed, dict), line
    return parsed


def written_by_the_client(line: str) -> bool:
    try:
        parsed = json.loads(line)
    except ValueError:
        return False
    return isinstance(parsed, dict) and ("forged" in parsed or parsed.get("message") == "forged")


def assert_json_objects_of_ours(lines: list[str]) -> None:
    assert [line for line in lines if not line.startswith("{")] == []
    assert all(entry(line).get("level") in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for line in lines)


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS.keys())
def test_no_client_can_write_a_log_line_of_its_own(server: Server, line_break: str) -> None:
    before = server.written()
    forgeries(server.port, line_break)

    lines = server.lines_after(f"/models/sentinel-{uuid.uuid4().hex}", before)

    assert [line for line in lines if written_by_the_client(line)] == []
    assert_json_objects_of_ours(lines)


def test_every_line_since_the_server_started_is_a_json_object(server: Server) -> None:
    # The main process's (listening, spawning a worker) and the worker's, Django's and Python's warnings.
    assert_json_objects_of_ours(server.lines_after(f"/models/sentinel-{uuid.uuid4().hex}"))


def test_the_access_log_is_json_and_still_leaves_out_static_files_and_the_liveness_probe(server: Server) -> None:
    before = server.written()
    for path in ("/static/admin/css/base.css", "/healthz"):
        test_server_errors.request(server.port, "GET", path)
    sentinel = f"/models/sentinel-{uuid.uuid4().hex}"

    written = server.lines_after(sentinel, before)

    access = [entry(line) for line in written if entry(line)["logger"] == "granian.access"]
    # Neither the static file nor the probe: only the sentinel's request.
    assert [record["message"].split('"')[1] for record in access] == [f"GET {sentinel} HTTP/1.1"]


def test_a_bad_host_is_one_warning_without_a_traceback(server: Server) -> None:
    before = server.written()
    host = f"bad-host-{uuid.uuid4().hex}.example"

    status, content_type, _ = test_server_errors.request(server.port, "GET", "/models", {"Host": host})
    lines = server.lines_after(f"/models/sentinel-{uuid.uuid4().hex}", before)

    assert (status, content_type) == (400, "application/json")
    about_the_host = [entry(line) for line in lines if host in line]
    assert [(record["level"], record["logger"]) for record in about_the_host] == [
        ("WARNING", "django.security.DisallowedHost")
    ]
    assert not any("Traceback" in line or "exc_info" in entry(line) for line in lines)
