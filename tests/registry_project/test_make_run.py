"""`make run` starts the real server on a fresh data folder, and the admin answers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

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
        except requests.ConnectionError as exc:
            last_error = exc
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout}s: {last_error}")


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
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    assert process.returncode is not None
