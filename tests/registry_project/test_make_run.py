"""`make run` starts the real server on a fresh data folder, and the admin answers."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.discovery.fakes.ollama import FakeOllama

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> requests.Response:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited early with {process.returncode}")
        try:
            return requests.get(url, timeout=2)
        except (requests.ConnectionError, requests.Timeout) as exc:  # the socket is bound before a worker is up
            last_error = exc
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout}s: {last_error}")


def interrupt(process: subprocess.Popen[bytes], *, timeout: float) -> bool:
    """Send SIGINT (Ctrl-C) to the process group; True if it stopped by itself, else it is killed."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False
    return True


def test_make_run_serves_the_admin_login(tmp_path: Path, free_port: int) -> None:
    # A fresh machine: no database or Redis configured, an empty data folder.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "PORT": str(free_port),
            "REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "DJANGO_SUPERUSER_USERNAME": "operator",
            "DJANGO_SUPERUSER_PASSWORD": "a-long-operator-password",
            "DISCOVERY_ON_STARTUP": "false",
        }
    )
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        response = wait_for(f"http://127.0.0.1:{free_port}/admin/login/", process)
        assert response.status_code == 200
        assert "csrfmiddlewaretoken" in response.text
        assert (tmp_path / "data" / "registry.sqlite3").exists()
    finally:
        stopped_by_sigint = interrupt(process, timeout=30)
        log.close()
    assert stopped_by_sigint, "make run did not stop on SIGINT within 30 s"


def children_of(pid: int) -> list[int]:
    """Every descendant process id of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def command_lines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append((Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def discovery_runs(database: Path) -> list[tuple[str, str]]:
    """(trigger, status) of every discovery run in the embedded SQLite file, read as another client would."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        try:
            return connection.execute("SELECT trigger, status FROM discovery_runs ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def test_make_run_starts_web_worker_and_beat_discovers_on_schedule_and_stops_on_sigint(
    tmp_path: Path, free_port: int
) -> None:
    fake_ollama = FakeOllama().start()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "PORT": str(free_port),
            "REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "DJANGO_SUPERUSER_USERNAME": "operator",
            "DJANGO_SUPERUSER_PASSWORD": "a-long-operator-password",
            "OLLAMA_URL": fake_ollama.url,
            "DISCOVERY_DEFAULT_INTERVAL_SECONDS": "10",
            "WEB_CONCURRENCY": "1",
        }
    )
    database = tmp_path / "data" / "registry.sqlite3"
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        response = wait_for(f"http://127.0.0.1:{free_port}/healthz", process)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

        processes = command_lines(children_of(process.pid))
        assert any("granian" in line and "registry_project.wsgi" in line for line in processes)
        assert any("celery" in line and " worker " in line for line in processes)
        assert any("celery" in line and " beat " in line for line in processes)

        # The first run is queued at startup; the next one comes from beat's schedule.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ("schedule", "succeeded") not in discovery_runs(database):
            time.sleep(0.5)
        runs = discovery_runs(database)
        assert ("startup", "succeeded") in runs
        assert ("schedule", "succeeded") in runs
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            names = {row[0] for row in connection.execute("SELECT name FROM models")}
        assert {tag["name"] for tag in fake_ollama.tags} <= names
        health = requests.get(f"http://127.0.0.1:{free_port}/health", timeout=5)
        assert health.json()["status"] == "ok"
        descendants = children_of(process.pid)
    finally:
        stopped_by_sigint = interrupt(process, timeout=40)
        log.close()
        fake_ollama.stop()
    assert stopped_by_sigint, "make run did not stop on SIGINT within 40 s"
    still_running = [pid for pid in descendants if Path(f"/proc/{pid}").exists()]
    assert still_running == []
