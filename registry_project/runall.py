"""``python -m registry_project.runall``: the whole service in one command (``make run``).

Prepares the database (migrate, the admin user, the alert schedule, the provider sources named
by the environment and their first discovery), then starts and supervises three processes:
the web server (granian, as registry_project/web.py configures it), a Celery worker and Celery
beat. With no environment this is the embedded mode:
SQLite, the file cache and kombu's filesystem broker, all under ``REGISTRY_DATA_DIR``.

A busy port stops it at once, before any migration, with the ``PORT=`` to use instead. The web
server writes to this terminal (its access log, without static files); the worker and beat write
to ``data/logs/worker.log`` and ``data/logs/beat.log``, so that the last lines printed, once web,
worker and beat are all up, are the URLs and the admin's credentials.

Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP) stops all three: each gets one SIGTERM (a
graceful stop, as ``docker stop`` gives it), and whatever is left of each one's process group gets
SIGKILL after ``RUNALL_STOP_TIMEOUT`` seconds (9; a second Ctrl-C: at once). Each child leads its
own session, so the terminal's Ctrl-C reaches the launcher alone (see ``Supervisor`` for why), and
granian gets ``WEB_GRACEFUL_TIMEOUT`` 5 s unless set, to kill a slow worker itself before that. If
one of them dies, the others are stopped too and the launcher exits non-zero (after the last lines
of its log), so a half-running service is never mistaken for a running one. On Linux, a child also
gets SIGTERM should the launcher itself die (SIGKILL, a crash).

The Prometheus multiprocess directory is set (and emptied) here, before any process imports
prometheus_client, so that ``/metrics`` on the web process adds up the counters of all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

# Importing these loads no app (and so not prometheus_client): django.setup() in main() does, after
# the environment is final.
import django
from django.core.management import call_command
from django.db import connections

from registry_project import web
from registry_project.celery import READY_DIR_VARIABLE

BASE_DIR = Path(__file__).resolve().parent.parent
# The children whose output goes to a file under data/logs rather than to this terminal.
LOGGED_TO_FILES = ("worker", "beat")
# Lines of a dead child's log file shown before the launcher exits.
LOG_TAIL_LINES = 30
# Seconds the children have to stop by themselves (RUNALL_STOP_TIMEOUT), within the 10 s a terminal's user
# (or docker stop) waits. Celery's worker is the slowest: 5-7.5 s when idle, its loops polling every 1-2 s.
STOP_TIMEOUT = 9.0
# granian's own limit for a worker finishing its requests (WEB_GRACEFUL_TIMEOUT, 20 s in production):
# under STOP_TIMEOUT, so that granian kills a slow worker itself, in order, before the launcher kills its group.
WEB_GRACEFUL_TIMEOUT = 5
# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    # Where its stdout and stderr go; None: this terminal.
    log: Path | None = None


@dataclass(frozen=True)
class Admin:
    """What the banner says of the admin user: its name, and a password only when one was just generated."""

    username: str
    generated_password: str | None
    password_from_environment: bool


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


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (a bind as the web server's fails)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return False  # an unknown host: let the web server say so
    with socket.socket(family, kind, proto) as probe:
        # As the web server binds: a closed connection of an earlier run (TIME_WAIT) is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def busy_port_message(host: str, port: int) -> str:
    return (
        f"runall: port {port} on {host} is already in use (another `make run`, or another service).\n"
        f"Choose another port, e.g.: PORT={port + 1} make run"
    )


def prepare_database() -> Admin:
    """migrate, the admin user, register_schedules, register_sources --discover: in this process.

    The admin user's password is not printed here, in the middle of the migration log: it is
    returned, for the banner printed once everything is up.
    """
    django.setup()
    # After django.setup(): the accounts module loads models.
    from registry.access.accounts import admin_user_ensure_from_environment

    call_command("migrate", interactive=False, verbosity=1)
    ensured = admin_user_ensure_from_environment()
    call_command("register_schedules")
    call_command("register_sources", discover=True)
    # DEBUG=false make run serves the admin through the manifest storage: collect what it lacks.
    call_command("ensure_static")
    # Let go of the database before the workers start (SQLite: no lock held by the launcher).
    connections.close_all()
    return Admin(
        username=ensured.username,
        generated_password=ensured.generated_password,
        password_from_environment=ensured.password_given,
    )


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


def stopped_with_launcher(launcher: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` by which the child gets SIGTERM when the launcher dies, even by SIGKILL (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arrange() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # it died before the prctl: no signal would come
            os._exit(1)

    return arrange


def end_group(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL every process left in the child's process group, then reap the child; its exit status.

    A child that stopped gracefully has stopped its own workers: what is left is an orphan (a granian
    worker whose main process was killed holds the port). A group outlives its leader while a member is left.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:  # not a group leader (not started by Supervisor.start)
        process.kill()
    return process.wait()


class Supervisor:
    """Starts the children, and stops all of them when one dies or a stop signal arrives.

    Each child leads its own session, so a terminal's Ctrl-C (SIGINT to its foreground process group)
    reaches the launcher alone, which sends each child's main process one SIGTERM. Were granian's
    workers in the terminal's group, they would get the SIGINT directly, then SIGTERM from granian's
    main process, and most stops would wait out ``--workers-kill-timeout``: a worker stops when its
    Python handler runs, only its main thread runs it, and that thread sleeps on a lock
    (granian/server/mp.py, granian 2.8) that a signal taken by one of the worker's Rust threads does
    not wake. A SIGTERM from granian's main process alone, as in ``docker stop``, stops them at once.
    """

    def __init__(self, members: list[Child], *, stop_timeout: float) -> None:
        self.members = members
        self.stop_timeout = stop_timeout
        self.stopping = False
        # A second stop signal (Ctrl-C again) while the children stop: kill what is left at once.
        self.hurry = False

    def start(self) -> None:
        for child in self.members:
            output: IO[bytes] | None = None
            if child.log is not None:
                child.log.parent.mkdir(parents=True, exist_ok=True)
                output = child.log.open("ab")
                output.write(f"=== runall: {child.name} starting at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
                output.flush()
            child.process = subprocess.Popen(  # noqa: S603 - our own commands
                child.command,
                cwd=BASE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
                # A preexec_fn is safe here: the launcher runs no threads.
                preexec_fn=stopped_with_launcher(os.getpid()),
            )
            if output is not None:
                output.close()  # the child holds its own descriptor
            where = f", log {display_path(child.log)}" if child.log else ""
            print(f"runall: started {child.name} (pid {child.process.pid}{where})", flush=True)

    def wait_until_ready(self, checks: dict[str, Callable[[], bool]], *, timeout: float) -> list[str]:
        """Poll ``checks`` until all pass; return the names still failing (at the timeout, a stop, or a death)."""
        pending = dict(checks)
        deadline = time.monotonic() + timeout
        while pending and not self.stopping and time.monotonic() < deadline:
            if any(c.process is not None and c.process.poll() is not None for c in self.members):
                break  # wait() reports it and stops the others
            pending = {name: check for name, check in pending.items() if not check()}
            if pending:
                time.sleep(0.2)
        return sorted(pending)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            self.hurry = True
        self.stopping = True

    def wait(self) -> int:
        """Block until a stop signal or a child's exit; return the launcher's exit status."""
        while not self.stopping:
            for child in self.members:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    if child.log is not None:
                        print(f"runall: the last lines of {display_path(child.log)}:", flush=True)
                        print(log_tail(child.log), end="", flush=True)
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
            # Its main process only: it stops its own workers (granian's, Celery's pool) in order.
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while alive and not self.hurry and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [c for c in alive if c.process is not None and c.process.poll() is None]
        for child in alive:
            reason = "a second stop signal" if self.hurry else f"not stopped in {self.stop_timeout:g} s"
            print(f"runall: {child.name}: {reason}; killing it", flush=True)
        for child in self.members:
            if child.process is not None:
                end_group(child.process)
        print("runall: stopped", flush=True)


def display_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it (``data/logs/worker.log``), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except OSError:
        return ""


def prepare_ready_dir(path: Path) -> None:
    """An empty folder where the worker and beat mark themselves up (registry_project.celery)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[READY_DIR_VARIABLE] = str(path)


def answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http:// URL
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return check


def marked_ready(path: Path) -> Callable[[], bool]:
    return path.exists


def base_url(host: str, port: str) -> str:
    # A wildcard address is where it listens, not where a browser goes.
    shown = "127.0.0.1" if host in {"", "0.0.0.0"} else ("[::1]" if host == "::" else host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner(*, url: str, admin: Admin, logs: list[Path], not_up: list[str]) -> list[str]:
    """The last lines `make run` prints: where everything is, and how to log in."""
    lines = []
    if not_up:
        lines.append(f"runall: {', '.join(not_up)} not up yet; see the logs if it stays so.")
    else:
        lines.append("runall: web, worker and beat are up. Ctrl-C stops all three.")
    if logs:
        lines.append("  Logs:      " + ", ".join(display_path(path) for path in logs))
    lines += [
        f"  Admin:     {url}/admin/",
        f"  API docs:  {url}/api/docs",
        f"  Health:    {url}/health",
        *credentials(admin),
    ]
    return lines


def credentials(admin: Admin) -> list[str]:
    lines = [f"  Username:  {admin.username}"]
    if admin.generated_password:
        lines.append(f"  Password:  {admin.generated_password}")
        lines.append("             (generated now, shown only this once; to choose your own:")
        lines.append("              DJANGO_SUPERUSER_PASSWORD=<password> make run)")
    elif admin.password_from_environment:
        lines.append("  Password:  the one in DJANGO_SUPERUSER_PASSWORD")
    else:
        lines.append("  Password:  unchanged (to set one: DJANGO_SUPERUSER_PASSWORD=<password> make run)")
    return lines


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8700")
    # Before any migration: a busy port is the commonest failure of a second `make run`.
    if port.isdigit() and port_in_use(host, int(port)):
        print(busy_port_message(host, int(port)), file=sys.stderr, flush=True)
        return 2
    data = data_dir()
    os.environ["REGISTRY_DATA_DIR"] = str(data)
    prepare_metrics_dir(data / "metrics")
    prepare_broker_dirs(data)
    prepare_ready_dir(data / "run" / "ready")
    sqlite = not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    os.environ.setdefault("WEB_GRACEFUL_TIMEOUT", str(WEB_GRACEFUL_TIMEOUT))
    admin = prepare_database()

    members = children(host=host, port=port, sqlite=sqlite)
    for child in members:
        if child.name in LOGGED_TO_FILES:
            child.log = data / "logs" / f"{child.name}.log"
    supervisor = Supervisor(members, stop_timeout=float(os.environ.get("RUNALL_STOP_TIMEOUT", STOP_TIMEOUT)))
    # The children are in sessions of their own: these reach the launcher alone, which stops them.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, supervisor.request_stop)
    supervisor.start()
    url = base_url(host, port)
    ready_dir = Path(os.environ[READY_DIR_VARIABLE])
    checks = {"web": answers(f"{url}/healthz")}
    checks.update({name: marked_ready(ready_dir / name) for name in LOGGED_TO_FILES})
    not_up = supervisor.wait_until_ready(checks, timeout=float(os.environ.get("RUNALL_READY_TIMEOUT", "90")))
    if supervisor.stopping or any(c.process is None or c.process.poll() is not None for c in members):
        code = supervisor.wait()
        if admin.generated_password:
            # Stored nowhere in clear: a start that failed must not take the only copy with it.
            print("\n".join(["runall: the admin user was created:", *credentials(admin)]), flush=True)
        return code
    logs = [child.log for child in members if child.log is not None]
    print("\n".join(["", *banner(url=url, admin=admin, logs=logs, not_up=not_up)]), flush=True)
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())
