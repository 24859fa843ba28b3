"""The production web server writes its token-less read counts on its own, and the last ones as it stops.

granian's workers are multiprocessing children, which skip ``atexit``: the counts a worker holds
when the server is stopped are written by a multiprocessing finalizer (registry/access/read_counts.py).
Embedded mode (SQLite in a data directory of the test's own), so that the test reads the server's rows.
"""

from __future__ import annotations

import http.client
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry_project import web

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def _counted(database: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT client_address, route, count FROM trusted_network_reads").fetchall()


def _server_env(data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"}}
    env["REGISTRY_DATA_DIR"] = str(data)
    return env


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded database migrated once for the module; each test serves a copy of its own."""
    data = tmp_path_factory.mktemp("read-counts-migrated")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=_server_env(data), check=True)
    return data / "registry.sqlite3"


@pytest.mark.parametrize("flush_seconds", ["1", "3600"])
def test_the_servers_reads_are_written_by_its_workers_and_at_its_stop(
    tmp_path: Path, free_port: int, flush_seconds: str, migrated: Path
) -> None:
    env = _server_env(tmp_path)
    env.update(
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        PLATFORM_API_COMPAT="alfred",
        PLATFORM_TRUSTED_NETWORKS="127.0.0.0/8",
        PLATFORM_READ_COUNTS_FLUSH_SECONDS=flush_seconds,
        WEB_CONCURRENCY="2",
        WEB_GRACEFUL_TIMEOUT="5",
        WEB_ACCESS_LOG="false",
    )
    database = tmp_path / "registry.sqlite3"
    shutil.copyfile(migrated, database)  # no process has it open: a plain copy is the whole database
    process = subprocess.Popen(
        web.command(host="127.0.0.1", port=str(free_port)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(free_port, "/healthz") == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the web server did not start")
        statuses = {_get(free_port, "/api/v1/models") for _ in range(20)}
        assert statuses == {200}
        if flush_seconds == "1":
            # Written by the workers' threads while the server runs.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and sum(row[2] for row in _counted(database)) < 20:
                time.sleep(0.2)
            assert _counted(database) == [("127.0.0.1", "/api/v1/models", 20)]
        else:
            assert _counted(database) == []  # held in the workers' memory: nothing written per read
    finally:
        process.terminate()
        process.wait(timeout=30)
    # And nothing lost when the server stops: what the workers held is written as they exit.
    assert _counted(database) == [("127.0.0.1", "/api/v1/models", 20)]
