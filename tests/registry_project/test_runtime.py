"""The launcher behind `make run` and the web server's configuration (registry_project/web.py), piece by piece."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def test_each_child_leads_its_own_session_so_a_terminal_s_ctrl_c_reaches_the_launcher_alone() -> None:
    supervisor = runall.Supervisor([runall.Child("web", python("import time; time.sleep(60)"))], stop_timeout=5)
    supervisor.start()
    try:
        child = supervisor.members[0].process
        assert child is not None
        assert os.getsid(child.pid) == child.pid
        assert os.getpgid(child.pid) == child.pid
    finally:
        supervisor.stop()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has stopped: only its exit status is left)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone_soon(pid: int, timeout: float = 5) -> bool:
    """Whether ``pid`` stops within ``timeout`` (a signalled process takes a moment to exit)."""
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def test_a_stop_leaves_no_process_of_a_child_behind(tmp_path: Path) -> None:
    # A child that stops at once, leaving a process of its own that ignores SIGTERM (an orphaned worker).
    pid_file = tmp_path / "grandchild.pid"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    parent = (
        f"import subprocess, sys, time; grandchild = subprocess.Popen([sys.executable, '-c', {stubborn!r}]);"
        f" open({str(pid_file)!r}, 'w').write(str(grandchild.pid)); time.sleep(60)"
    )
    supervisor = runall.Supervisor([runall.Child("web", python(parent))], stop_timeout=5)
    supervisor.start()
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child did not start its own process"
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())

    started = time.monotonic()
    supervisor.stop()

    assert time.monotonic() - started < 2  # the child stopped at once; its group was killed then
    assert gone_soon(grandchild)


def test_a_second_stop_request_kills_what_is_left_at_once() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    supervisor = runall.Supervisor([runall.Child("worker", python(stubborn))], stop_timeout=30)
    supervisor.start()
    time.sleep(0.5)  # its handler in place
    supervisor.request_stop(2, None)
    supervisor.request_stop(2, None)

    started = time.monotonic()
    code = supervisor.wait()

    assert code == 0
    assert time.monotonic() - started < 2
    assert supervisor.members[0].process is not None
    assert supervisor.members[0].process.returncode == -9


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_the_children_get_sigterm_when_the_launcher_is_killed() -> None:
    launcher = subprocess.Popen(
        python(
            "import sys, time; from registry_project import runall;"
            " sleeper = runall.Child('web', [sys.executable, '-c', 'import time; time.sleep(60)']);"
            " runall.Supervisor([sleeper], stop_timeout=5).start(); time.sleep(60)"
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    child = int(launcher.stdout.readline().split("(pid ")[1].rstrip(")\n"))

    launcher.kill()
    launcher.wait()

    assert gone_soon(child)


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


def test_the_processes_are_granian_a_worker_and_beat() -> None:
    members = runall.children(host="127.0.0.1", port="8123", sqlite=True)

    assert [child.name for child in members] == ["web", "worker", "beat"]
    web, worker, beat = (child.command for child in members)
    assert web[1:3] == ["-m", "granian"]
    assert web[web.index("--host") + 1 : web.index("--host") + 4] == ["127.0.0.1", "--port", "8123"]
    assert web[-1] == "registry_project.wsgi:application"
    assert worker[worker.index("--concurrency") + 1] == "1"  # SQLite: one writer at a time
    assert beat[-3:] == ["beat", "--loglevel", "INFO"]


WEB_SETTINGS = """
import json, os
from registry_project import web
web.prepare_metrics_dir()
print(json.dumps({"command": web.command(), "multiproc": os.environ["PROMETHEUS_MULTIPROC_DIR"]}))
"""


def web_settings(**env: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_MULTIPROC_DIR", "WEB_"))}
    environment.update(env)
    output = subprocess.run(
        python(WEB_SETTINGS), cwd=ROOT, env=environment, capture_output=True, check=True, timeout=30
    )
    return dict(json.loads(output.stdout))


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_web_server_reads_port_workers_and_threads_from_the_environment() -> None:
    settings = web_settings(PORT="8799", WEB_CONCURRENCY="3", WEB_THREADS="4")

    command = settings["command"]
    assert (option(command, "--interface"), option(command, "--host"), option(command, "--port")) == (
        "wsgi",
        "0.0.0.0",
        "8799",
    )
    assert (option(command, "--workers"), option(command, "--blocking-threads")) == ("3", "4")
    assert "--access-log" in command  # on unless WEB_ACCESS_LOG says otherwise
    assert settings["multiproc"].endswith("model-registry-prometheus-8799")


def test_the_web_server_logs_through_the_services_formatter() -> None:
    command = web_settings()["command"]

    config = json.loads(Path(option(command, "--log-config")).read_text())
    assert config["formatters"]["line"] == {"()": "registry_project.logs.line_formatter"}
    assert config["loggers"]["granian.access"]["filters"] == ["without_static_files_or_probes"]
    assert "[%(time)s]" not in option(command, "--access-log-fmt")  # the formatter writes the time


def test_the_access_log_can_be_turned_off_and_workers_recycled() -> None:
    command = web_settings(WEB_ACCESS_LOG="false", WEB_WORKERS_LIFETIME="3600")["command"]

    assert "--access-log" not in command
    assert option(command, "--workers-lifetime") == "3600"


def test_a_bad_worker_count_fails_loudly_with_its_name() -> None:
    environment = {**os.environ, "WEB_CONCURRENCY": "many"}
    result = subprocess.run(python(WEB_SETTINGS), cwd=ROOT, env=environment, capture_output=True, timeout=30)

    assert result.returncode != 0
    assert b"WEB_CONCURRENCY" in result.stderr
