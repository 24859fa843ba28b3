"""``python -m registry_project.runall``: the whole service in one command (``make run``).

Prepares the database (migrate, the admin user, the alert schedule, the provider sources named
by the environment and their first discovery), then starts and supervises three processes:
the web server (granian, as registry_project/web.py configures it), a Celery worker and Celery
beat. With no environment this is the embedded mode:
SQLite, the file cache and kombu's filesystem broker, all under ``REGISTRY_DATA_DIR``.

Ctrl-C (SIGINT) or SIGTERM stops all three: each gets SIGTERM (a graceful stop), and SIGKILL
after ``RUNALL_STOP_TIMEOUT`` seconds. If one of them dies, the others are stopped too and the
launcher exits non-zero, so a half-running service is never mistaken for a running one.

The Prometheus multiprocess directory is set (and emptied) here, before any process imports
prometheus_client, so that ``/metrics`` on the web process adds up the counters of all of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

# Importing these loads no app (and so not prometheus_client): django.setup() in main() does, after
# the environment is final.
import django
from django.core.management import call_command
from django.db import connections

from registry_project import web

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None


def data_dir() -> Path:
    # The same rule as settings.DATA_DIR; settings cannot be read yet (see the module docstring).
    return Path(os.environ.get("REGISTRY_DATA_DIR") or BASE_DIR / "data").resolve()


def prepare_metrics_dir(path: Path) -> None:
    """An empty multiprocess directory: files of earlier runs would add stale counts to this one."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def prepare_broker_dirs(data: Path) -> None:
    """kombu's filesystem transport expects its folders to exist (settings.CELERY_BROKER_TRANSPORT_OPTIONS)."""
    for folder in ("queue", "processed"):
        (data / "broker" / folder).mkdir(parents=True, exist_ok=True)


def prepare_database() -> None:
    """migrate, ensure_admin, register_schedules, register_sources --discover: in this process."""
    django.setup()
    call_command("migrate", interactive=False, verbosity=1)
    call_command("ensure_admin")
    call_command("register_schedules")
    call_command("register_sources", discover=True)
    # Let go of the database before the workers start (SQLite: no lock held by the launcher).
    connections.close_all()


def children(*, host: str, port: str, sqlite: bool) -> list[Child]:
    python = sys.executable
    concurrency = os.environ.get("CELERY_WORKER_CONCURRENCY") or ("1" if sqlite else "2")
    return [
        Child("web", web.command(host=host, port=port)),
        Child(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "registry_project",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                concurrency,
                "--hostname",
                f"worker@{os.uname().nodename}",
            ],
        ),
        Child("beat", [python, "-m", "celery", "-A", "registry_project", "beat", "--loglevel", "INFO"]),
    ]


class Supervisor:
    """Starts the children, and stops all of them when one dies or a stop signal arrives."""

    def __init__(self, members: list[Child], *, stop_timeout: float) -> None:
        self.members = members
        self.stop_timeout = stop_timeout
        self.stopping = False

    def start(self) -> None:
        for child in self.members:
            child.process = subprocess.Popen(child.command, cwd=BASE_DIR)  # noqa: S603 - our own commands
            print(f"runall: started {child.name} (pid {child.process.pid})", flush=True)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def wait(self) -> int:
        """Block until a stop signal or a child's exit; return the launcher's exit status."""
        while not self.stopping:
            for child in self.members:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    print(f"runall: {child.name} exited with {code}; stopping the others", flush=True)
                    self.stop()
                    return code or 1
            time.sleep(0.2)
        self.stop()
        return 0

    def stop(self) -> None:
        alive = [c for c in self.members if c.process is not None and c.process.poll() is None]
        for child in alive:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in alive:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"runall: {child.name} did not stop in {self.stop_timeout:.0f} s; killing it", flush=True)
                child.process.kill()
                child.process.wait()
        print("runall: stopped", flush=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    data = data_dir()
    os.environ["REGISTRY_DATA_DIR"] = str(data)
    prepare_metrics_dir(data / "metrics")
    prepare_broker_dirs(data)
    sqlite = not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    prepare_database()

    members = children(host=os.environ.get("HOST", "127.0.0.1"), port=os.environ.get("PORT", "8700"), sqlite=sqlite)
    supervisor = Supervisor(members, stop_timeout=float(os.environ.get("RUNALL_STOP_TIMEOUT", "20")))
    # A terminal's Ctrl-C reaches the whole process group (children too); SIGTERM only this process.
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    supervisor.start()
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())
