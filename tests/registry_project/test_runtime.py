"""The launcher behind `make run` and the gunicorn configuration, piece by piece."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry_project import runall

ROOT = Path(__file__).resolve().parents[2]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_dies_stops_the_others_and_fails_the_launcher() -> None:
    supervisor = runall.Supervisor(
        [runall.Child("steady", python("import time; time.sleep(60)")), runall.Child("dies", python("exit(3)"))],
        stop_timeout=10,
    )
    supervisor.start()

    code = supervisor.wait()

    assert code == 3
    assert all(child.process is not None and child.process.poll() is not None for child in supervisor.members)


def test_a_stop_request_stops_every_child_gracefully() -> None:
    supervisor = runall.Supervisor(
        [runall.Child(name, python("import time; time.sleep(60)")) for name in ("web", "worker", "beat")],
        stop_timeout=10,
    )
    supervisor.start()
    supervisor.request_stop(15, None)

    started = time.monotonic()
    code = supervisor.wait()

    assert code == 0
    assert [child.process.returncode for child in supervisor.members if child.process] == [-15, -15, -15]
    assert time.monotonic() - started < 5


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    child = runall.Child("stubborn", python(stubborn))
    supervisor = runall.Supervisor([child], stop_timeout=0.5)
    child.process = subprocess.Popen(child.command, stdout=subprocess.PIPE)
    assert child.process.stdout is not None
    assert child.process.stdout.readline() == b"ready\n"

    supervisor.stop()

    assert child.process.returncode == -9


def test_the_metrics_directory_starts_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_12345.db").write_bytes(b"stale")

    runall.prepare_metrics_dir(metrics_dir)

    assert list(metrics_dir.iterdir()) == []
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir)


def test_the_broker_folders_exist_before_the_worker_starts(tmp_path: Path) -> None:
    runall.prepare_broker_dirs(tmp_path)

    assert (tmp_path / "broker" / "queue").is_dir()
    assert (tmp_path / "broker" / "processed").is_dir()


def test_the_processes_are_gunicorn_a_worker_and_beat() -> None:
    members = runall.children(host="127.0.0.1", port="8123", sqlite=True)

    assert [child.name for child in members] == ["web", "worker", "beat"]
    web, worker, beat = (child.command for child in members)
    assert web[0].endswith("gunicorn")
    assert web[-2:] == ["--bind", "127.0.0.1:8123"]
    assert worker[worker.index("--concurrency") + 1] == "1"  # SQLite: one writer at a time
    assert beat[-3:] == ["beat", "--loglevel", "INFO"]


GUNICORN_SETTINGS = """
import json, os, runpy
settings = runpy.run_path("gunicorn.conf.py")
print(json.dumps({
    "bind": settings["bind"], "workers": settings["workers"],
    "multiproc": os.environ["PROMETHEUS_MULTIPROC_DIR"], "has_child_exit": callable(settings["child_exit"]),
}))
"""


def test_gunicorn_reads_port_and_workers_from_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"PORT": "8799", "WEB_CONCURRENCY": "3"})

    output = subprocess.run(python(GUNICORN_SETTINGS), cwd=ROOT, env=env, capture_output=True, check=True, timeout=30)

    settings = json.loads(output.stdout)
    assert settings["bind"] == "0.0.0.0:8799"
    assert settings["workers"] == 3
    assert settings["multiproc"].endswith("model-registry-prometheus-8799")
    assert settings["has_child_exit"] is True
