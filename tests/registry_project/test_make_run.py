"""`make run` starts the real server on a fresh data folder, and the admin answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from registry_project.runall import port_in_use
from tests.discovery.fakes.ollama import FakeOllama

ROOT = Path(__file__).resolve().parents[2]

# Every test here starts `make run` in its embedded mode whatever the environment names (the twenty stops
# alone take about 3.5 minutes): CI's run on the embedded defaults covers them, and its run on PostgreSQL
# and Redis would only repeat them.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL")), reason="embedded mode only: the run without DATABASE_URL covers it"
    ),
]

# What a terminal's user waits for Ctrl-C (SIGINT to the foreground process group) to stop everything.
STOP_SECONDS = 10
STOPS_IN_A_ROW = 20
# How often a wait looks again (a refused connection, a small file read, a SQLite query): short, so that
# no start of the twenty waits out a long sleep after the server is already up.
POLL_SECONDS = 0.05


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
            time.sleep(POLL_SECONDS)
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
        stopped_by_sigint = interrupt(process, timeout=STOP_SECONDS)
        log.close()
    assert stopped_by_sigint, f"make run did not stop on SIGINT within {STOP_SECONDS} s"


@dataclass(frozen=True)
class ProcessEntry:
    """One line of the process table, as /proc/<pid>/stat gives it."""

    pid: int
    parent: int
    group: int
    # Clock ticks after boot: with the pid, it names one process even once the pid is reused.
    started: int
    zombie: bool


def process_table() -> dict[int, ProcessEntry]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # After the command name: state, ppid, pgrp, ...; starttime is the 22nd field of proc(5).
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        table[pid] = ProcessEntry(pid, int(fields[1]), int(fields[2]), int(fields[19]), fields[0] == "Z")
    return table


def descendants_of(pid: int) -> list[ProcessEntry]:
    """Every process below ``pid`` in the process tree, now."""
    table = process_table()
    children: dict[int, list[ProcessEntry]] = {}
    for entry in table.values():
        children.setdefault(entry.parent, []).append(entry)
    found: list[ProcessEntry] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return found


def children_of(pid: int) -> list[int]:
    """Every descendant process id of ``pid`` (from /proc)."""
    return [entry.pid for entry in descendants_of(pid)]


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
            time.sleep(0.2)
        runs = discovery_runs(database)
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            errors = connection.execute("SELECT trigger, error_message FROM discovery_runs").fetchall()
        assert ("startup", "succeeded") in runs, errors
        assert ("schedule", "succeeded") in runs, errors
        with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
            names = {row[0] for row in connection.execute("SELECT name FROM models")}
        assert {tag["name"] for tag in fake_ollama.tags} <= names
        health = requests.get(f"http://127.0.0.1:{free_port}/health", timeout=5)
        assert health.json()["status"] == "ok"
        descendants = children_of(process.pid)
    finally:
        stopped_by_sigint = interrupt(process, timeout=STOP_SECONDS)
        log.close()
        fake_ollama.stop()
    assert stopped_by_sigint, f"make run did not stop on SIGINT within {STOP_SECONDS} s"
    still_running = [pid for pid in descendants if Path(f"/proc/{pid}").exists()]
    assert still_running == []


def runall_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    """`make run`'s environment on a fresh machine (no database or Redis configured), on ``port``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env = {k: v for k, v in env.items() if not k.startswith("DJANGO_SUPERUSER_")}
    env.update(
        {"DEBUG": "true", "PORT": str(port), "REGISTRY_DATA_DIR": str(tmp_path / "data"), "WEB_CONCURRENCY": "1"}
    )
    env.update(extra)
    return env


def start_runall(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m registry_project.runall`` as `make run` execs it; its stdout and stderr go to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "registry_project.runall"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if text in output:
            return output
        if process.poll() is not None:
            pytest.fail(f"runall exited with {process.returncode} before printing {text!r}:\n{output}")
        time.sleep(POLL_SECONDS)
    pytest.fail(f"runall printed no {text!r} within {timeout}s:\n{path.read_text(errors='replace')}")


def test_make_run_ends_with_the_urls_and_the_generated_password_and_logs_no_static_file(
    tmp_path: Path, free_port: int
) -> None:
    fake_ollama = FakeOllama().start()
    log_path = tmp_path / "run.log"
    process = start_runall(runall_env(tmp_path, free_port, OLLAMA_URL=fake_ollama.url), log_path)
    base = f"http://127.0.0.1:{free_port}"
    try:
        wait_for_text(log_path, "  Password:", process)
        # The first discovery runs in the worker meanwhile: its logs must not scroll the banner away.
        deadline = time.monotonic() + 60
        database = tmp_path / "data" / "registry.sqlite3"
        while time.monotonic() < deadline and ("startup", "succeeded") not in discovery_runs(database):
            time.sleep(0.2)
        if ("startup", "succeeded") not in discovery_runs(database):
            with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
                errors = connection.execute("SELECT error_message FROM discovery_runs").fetchall()
            worker_log = tmp_path / "data" / "logs" / "worker.log"
            tail = worker_log.read_text(errors="replace")[-3000:] if worker_log.exists() else ""
            pytest.fail(f"the startup discovery did not succeed: {errors}\nworker log:\n{tail}")
        time.sleep(2)
        lines = log_path.read_text().rstrip("\n").splitlines()

        start = max(i for i, line in enumerate(lines) if line.startswith("runall: web, worker and beat are up"))
        banner = lines[start:]
        assert [line.split(":")[0].strip() for line in banner[2:7]] == [
            "Admin",
            "API docs",
            "Health",
            "Username",
            "Password",
        ]
        assert banner[2:6] == [
            f"  Admin:     {base}/admin/",
            f"  API docs:  {base}/api/docs",
            f"  Health:    {base}/health",
            "  Username:  admin",
        ]
        assert "data/logs/worker.log" in banner[1]
        assert "data/logs/beat.log" in banner[1]
        assert "DJANGO_SUPERUSER_PASSWORD=<password> make run" in banner[-1]
        assert not any("changepassword" in line for line in lines)
        password = banner[6].split("Password:")[1].strip()
        # Printed once, in the banner, not in the middle of the migration log.
        assert sum(password in line for line in lines) == 1
        # The worker's and beat's own logs went to their files.
        terminal = "\n".join(lines)
        assert "[config]" not in terminal
        assert "beat: Starting" not in terminal
        assert "[config]" in (tmp_path / "data" / "logs" / "worker.log").read_text()
        assert "beat: Starting" in (tmp_path / "data" / "logs" / "beat.log").read_text()

        token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=5)
        assert token.status_code == 200
        assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200
        assert requests.get(f"{base}/models", timeout=5).status_code == 401
        # The last request's line is logged last (one web worker, requests one after another): once it is
        # there, a line for the static file would be there too.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and '"GET /models HTTP/1.1" 401' not in log_path.read_text():
            time.sleep(POLL_SECONDS)
        after = log_path.read_text()
        assert '"GET /models HTTP/1.1" 401' in after
        assert '"POST /auth/token HTTP/1.1" 200' in after
        assert "/static/" not in after
    finally:
        stopped_by_sigint = interrupt(process, timeout=STOP_SECONDS)
        fake_ollama.stop()
    assert stopped_by_sigint, f"make run did not stop on SIGINT within {STOP_SECONDS} s"


def test_make_run_on_a_busy_port_fails_at_once_saying_how_to_choose_another(tmp_path: Path, free_port: int) -> None:
    log_path = tmp_path / "run.log"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        process = start_runall(runall_env(tmp_path, free_port), log_path)
        try:
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    output = log_path.read_text()
    assert code != 0
    assert f"port {free_port} on 127.0.0.1 is already in use" in output
    assert f"PORT={free_port + 1} make run" in output
    # Before any migration: the data folder holds no database.
    assert not (tmp_path / "data" / "registry.sqlite3").exists()
    assert "Applying" not in output


def test_a_start_that_fails_still_shows_the_generated_password_last(tmp_path: Path, free_port: int) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface: the web server cannot bind it and exits.
    log_path = tmp_path / "run.log"
    process = start_runall(runall_env(tmp_path, free_port, HOST="192.0.2.1", RUNALL_STOP_TIMEOUT="5"), log_path)
    try:
        code = process.wait(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    lines = log_path.read_text().rstrip("\n").splitlines()
    assert code != 0
    assert any(line.startswith("runall: web exited with") for line in lines)
    assert lines[-5:-3] == ["runall: the admin user was created:", "  Username:  admin"]
    assert lines[-3].startswith("  Password:  ")
    assert len(lines[-3].split()) == 2
    assert lines[-1].endswith("DJANGO_SUPERUSER_PASSWORD=<password> make run)")


def survivors(processes: list[ProcessEntry], group: int) -> list[ProcessEntry]:
    """Those of ``processes`` still running, and any other process of ``group``.

    A zombie has stopped (it holds no port, only its exit status for a parent that may be gone).
    """
    table = process_table()
    running = [
        table[entry.pid]
        for entry in processes
        if entry.pid in table and table[entry.pid].started == entry.started and not table[entry.pid].zombie
    ]
    return running + [
        entry for entry in table.values() if entry.group == group and not entry.zombie and entry not in running
    ]


def kill_all(processes: list[ProcessEntry], group: int) -> None:
    for entry in survivors(processes, group):
        with contextlib.suppress(OSError):
            os.kill(entry.pid, signal.SIGKILL)


def test_ctrl_c_stops_every_process_of_make_run_within_10_s_twenty_times_in_a_row(
    tmp_path: Path, free_port: int
) -> None:
    # As `make run` starts it (two web workers), on a data folder the first start migrates and the others reuse.
    env = runall_env(tmp_path, free_port, WEB_CONCURRENCY="2", DISCOVERY_ON_STARTUP="false")
    stop_times: list[float] = []
    for attempt in range(STOPS_IN_A_ROW):
        log_path = tmp_path / f"run-{attempt}.log"
        process = start_runall(env, log_path)
        processes: list[ProcessEntry] = []
        try:
            wait_for_text(log_path, "runall: web, worker and beat are up", process)
            processes = descendants_of(process.pid)
            commands = command_lines([entry.pid for entry in processes])
            # granian's main process and its two workers, the Celery worker and its pool process, beat.
            assert sum("granian" in line for line in commands) == 3, commands
            assert sum("celery" in line and " worker " in line for line in commands) == 2, commands
            assert sum("celery" in line and " beat " in line for line in commands) == 1, commands

            # What a terminal does on Ctrl-C: SIGINT to every process of its foreground group.
            started = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            deadline = started + STOP_SECONDS
            while (process.poll() is None or survivors(processes, process.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop_times.append(time.monotonic() - started)
            left = command_lines([entry.pid for entry in survivors(processes, process.pid)])
            output = log_path.read_text(errors="replace")[-3000:]
            assert left == [], f"stop {attempt + 1}: still running after {STOP_SECONDS} s: {left}\n{output}"
            assert process.returncode == 0, (
                f"stop {attempt + 1}: the launcher exited with {process.returncode}\n{output}"
            )
            assert not port_in_use("127.0.0.1", free_port), f"stop {attempt + 1}: the port is still taken"
        finally:
            kill_all(processes, process.pid)
            if process.poll() is None:
                process.kill()
            process.wait()
    print(f"stop times (s): {', '.join(f'{seconds:.1f}' for seconds in stop_times)}")


def test_make_run_with_debug_off_serves_the_admin_through_the_static_manifest(tmp_path: Path, free_port: int) -> None:
    """Production settings from a checkout: the first start collects the static files the manifest needs."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "make-run-production-like-secret-key-0123456789",
            "JWT_SECRET": "make-run-production-like-jwt-secret-0123456789",
            "PORT": str(free_port),
            "REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "DJANGO_SUPERUSER_USERNAME": "operator",
            "DJANGO_SUPERUSER_PASSWORD": "a-long-operator-password",
            "WEB_CONCURRENCY": "1",
        }
    )
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(f"http://127.0.0.1:{free_port}/healthz", process)
        login = requests.get(f"http://127.0.0.1:{free_port}/admin/login/", timeout=10)
        stylesheet = requests.get(f"http://127.0.0.1:{free_port}/static/admin/css/base.css", timeout=10)
    finally:
        stopped_by_sigint = interrupt(process, timeout=STOP_SECONDS)
        log.close()
    assert login.status_code == 200, (tmp_path / "run.log").read_text()[-3000:]
    assert stylesheet.status_code == 200
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert stopped_by_sigint
