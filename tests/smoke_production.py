"""The production install, run as the image runs it: ``make smoke`` (CI runs it before the tests).

The dev environment hides missing production dependencies (kombu's Redis transport once crashed
the worker on a production install because only the dev tools brought ``packaging``). So this
driver starts ``docker/entrypoint.sh web``, ``worker`` and ``beat`` from a virtualenv holding only
the production lock (``--venv``), with ``DEBUG=false`` on PostgreSQL and Redis, beside fake Ollama
servers on 127.0.0.1, and checks what an operator relies on:

- the source named by ``OLLAMA_URL`` is registered at startup and its first discovery runs;
- ``POST /sources/{id}/discover`` goes through the real broker and worker and registers the
  provider's models; a source on a 10 s schedule is discovered by beat, by itself;
- ``/admin/login/`` answers 200, and ``/admin/`` and ``/api/docs`` do for staff logged in there
  (static files collected by the entrypoint, served through the manifest storage);
- ``/health`` is ``ok``, and ``degraded`` with the broker failing in a process whose kombu
  transport cannot be imported (``packaging`` hidden, as on the broken install);
- SIGTERM stops each of the three within 10 s, with nothing of its process group left behind;
- once running, every line each of them writes is one JSON object (``DEBUG=false``'s log format).

The driver itself runs in the dev environment (requests, psycopg and the tests' fake providers);
everything it starts runs from ``--venv``. It prints each step with its time and exits non-zero
at the first failure, after the tail of the three processes' logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import requests
from psycopg import sql

from tests.discovery.fakes.ollama import FakeOllama, generated_models

ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 10.0
T = TypeVar("T")


class SmokeFailure(Exception):
    pass


# The last line entrypoint.sh's preparation prints before it execs the process itself.
LAST_PREPARATION_LINE = {"web": "static files:", "worker": "the database answers", "beat": "the database answers"}


# What Celery's signal handler prints itself on SIGTERM, outside logging: fixed text, no client's.
CELERY_NOTICE = re.compile(r"|worker: (Warm|Cold) shutdown \(MainProcess\)")


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], *, seconds: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(requests.RequestException):
            if (result := probe()) is not None:
                return result
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{what}: not within {seconds:.0f} s")
        time.sleep(every)


@dataclass
class Process:
    name: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    venv: Path
    database_url: str
    redis_url: str
    work: Path
    port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, name: str, ollama_url: str) -> dict[str, str]:
        keep = {"HOME", "LANG", "LC_ALL", "TMPDIR", "TZ"}
        env = {key: value for key, value in os.environ.items() if key in keep}
        env.update(
            {
                # `python` and `celery` in entrypoint.sh are the production venv's.
                "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "DEBUG": "false",
                "SECRET_KEY": self.secret_key,
                "JWT_SECRET": self.jwt_secret,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": "1",
                "CELERY_WORKER_CONCURRENCY": "1",
                "OLLAMA_URL": ollama_url,
                "DJANGO_SUPERUSER_USERNAME": "operator",
                "DJANGO_SUPERUSER_PASSWORD": self.admin_password,
                "REGISTRY_DATA_DIR": str(self.work / "data"),
                "STATIC_ROOT": str(self.work / "static"),
                "PROMETHEUS_MULTIPROC_DIR": str(self.work / f"prometheus-{name}"),
                "BEAT_HEARTBEAT_FILE": str(self.work / "beat.heartbeat"),
                "LOG_LEVEL": "info",
            }
        )
        return env

    def __post_init__(self) -> None:
        self.secret_key = secrets.token_urlsafe(48)
        self.jwt_secret = secrets.token_urlsafe(48)

    def start(self, name: str, ollama_url: str) -> Process:
        process = Process(name, self.work / f"{name}.log")
        with process.log.open("wb") as log:
            process.popen = subprocess.Popen(
                ["sh", "docker/entrypoint.sh", name],
                cwd=ROOT,
                env=self.environment(name, ollama_url),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: the stop below checks that nothing of the group survives.
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def stop(self, name: str) -> float:
        """SIGTERM as docker stop sends it; the seconds until the process and its whole group are gone."""
        popen = self.processes[name].popen
        assert popen is not None
        started = time.monotonic()
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise SmokeFailure(f"{name} still runs {STOP_SECONDS:.0f} s after SIGTERM") from error
        while time.monotonic() - started < STOP_SECONDS:
            try:
                os.killpg(popen.pid, 0)
            except ProcessLookupError:
                return time.monotonic() - started
            time.sleep(0.1)
        raise SmokeFailure(f"{name}: processes of its group survive {STOP_SECONDS:.0f} s after SIGTERM")

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.popen is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)

    def check_alive(self) -> None:
        for process in self.processes.values():
            assert process.popen is not None
            if process.popen.poll() is not None:
                raise SmokeFailure(f"{process.name} exited with {process.popen.returncode}")


def recreate_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def check_production_venv(venv: Path) -> None:
    """Only the production lock is installed: none of the dev tools is importable."""
    python = str(venv / "bin" / "python")
    dev_tools = ("pytest", "factory", "mypy", "schemathesis")
    probe = f"import importlib.util as u; print([m for m in {dev_tools!r} if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    if found != "[]":
        raise SmokeFailure(f"{venv} holds dev packages {found}: it must hold the production lock only")


def api(stack: Stack, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, f"{stack.base}{path}", headers=headers, timeout=10, **kwargs)


def model_names(stack: Stack, token: str) -> set[str]:
    names: set[str] = set()
    url: str | None = f"{stack.base}/models?limit=500"
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        names |= {model["name"] for model in page["results"]}
        url = page.get("next")
    return names


def runs_of(stack: Stack, token: str, source_id: int) -> list[dict[str, Any]]:
    response = api(stack, token, "GET", f"/sources/{source_id}/runs")
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def create_source(stack: Stack, token: str, name: str, url: str, interval: int) -> int:
    body = {"name": name, "kind": "ollama", "base_url": url, "interval_seconds": interval}
    response = api(stack, token, "POST", "/sources", json=body)
    if response.status_code != 201:
        raise SmokeFailure(f"POST /sources answered {response.status_code}: {response.text[:300]}")
    return int(response.json()["id"])


def health_with_transport_hidden(stack: Stack) -> dict[str, Any]:
    """/health in a fresh production process where `packaging` cannot be imported (the broken install)."""
    shim = stack.work / "without-packaging"
    shim.mkdir(exist_ok=True)
    (shim / "packaging.py").write_text("raise ImportError('packaging is not installed (smoke test)')\n")
    script = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/health', HTTP_HOST='localhost')\n"
        "print(json.dumps({'status_code': response.status_code, **response.json()}))\n"
    )
    env = {
        **stack.environment("health", ""),
        "PYTHONPATH": str(shim),
        "DJANGO_SETTINGS_MODULE": "registry_project.settings",
    }
    # entrypoint.sh makes each process's Prometheus directory; this process is started without it.
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
    result = subprocess.run(
        [str(stack.venv / "bin" / "python"), "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise SmokeFailure(f"/health with the transport hidden failed to run: {result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


@contextlib.contextmanager
def fake_ollama(prefix: str, count: int) -> Iterator[FakeOllama]:
    server = FakeOllama(generated_models(count, prefix=prefix)).start()
    try:
        yield server
    finally:
        server.stop()


def run(stack: Stack) -> None:
    check_production_venv(stack.venv)
    with (
        fake_ollama("smoke-startup", 2) as startup_provider,
        fake_ollama("smoke-manual", 3) as manual_provider,
        fake_ollama("smoke-scheduled", 2) as scheduled_provider,
    ):
        # The providers stay up until the three processes are stopped: beat keeps scheduling them.
        step("starting entrypoint.sh web (migrate, admin, schedules, sources, static files, granian)")
        stack.start("web", startup_provider.url)
        wait_for(
            "web answering /healthz",
            lambda: stack.check_alive() or (requests.get(f"{stack.base}/healthz", timeout=2).ok or None),
            seconds=120,
        )
        step("starting entrypoint.sh worker and beat")
        stack.start("worker", startup_provider.url)
        stack.start("beat", startup_provider.url)

        token = requests.post(
            f"{stack.base}/auth/token", json={"username": "operator", "password": stack.admin_password}, timeout=10
        ).json()["access"]

        startup_names = {tag["name"] for tag in startup_provider.tags}
        wait_for(
            "the startup discovery of OLLAMA_URL's source",
            lambda: stack.check_alive() or (startup_names <= model_names(stack, token) or None),
            seconds=60,
        )
        step(f"startup discovery registered {sorted(startup_names)}")

        manual = create_source(stack, token, "smoke-manual", manual_provider.url, interval=3600)
        queued = api(stack, token, "POST", f"/sources/{manual}/discover")
        if queued.status_code != 202:
            raise SmokeFailure(f"POST /sources/{manual}/discover answered {queued.status_code}: {queued.text[:300]}")
        manual_names = {tag["name"] for tag in manual_provider.tags}
        wait_for(
            "the requested discovery through the broker and worker",
            lambda: stack.check_alive() or (manual_names <= model_names(stack, token) or None),
            seconds=60,
        )
        triggers = [run["trigger"] for run in runs_of(stack, token, manual)]
        if triggers != ["manual"]:
            raise SmokeFailure(f"the requested discovery's runs: {triggers}")
        step(f"POST /sources/{manual}/discover registered {sorted(manual_names)}")

        scheduled = create_source(stack, token, "smoke-scheduled", scheduled_provider.url, interval=10)
        scheduled_names = {tag["name"] for tag in scheduled_provider.tags}
        wait_for(
            "a discovery started by beat on the 10 s schedule",
            lambda: (
                stack.check_alive()
                or (
                    (
                        any(run["trigger"] == "schedule" for run in runs_of(stack, token, scheduled))
                        and scheduled_names <= model_names(stack, token)
                    )
                    or None
                )
            ),
            seconds=60,
        )
        step(f"beat's scheduled discovery registered {sorted(scheduled_names)}")

        browser = requests.Session()
        login = browser.get(f"{stack.base}/admin/login/", timeout=10)
        if login.status_code != 200:
            raise SmokeFailure(f"/admin/login/ answered {login.status_code}")
        signed_in = browser.post(
            f"{stack.base}/admin/login/?next=/admin/",
            data={
                "username": "operator",
                "password": stack.admin_password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{stack.base}/admin/login/"},
            timeout=10,
        )
        if signed_in.status_code != 200 or "sessionid" not in browser.cookies:
            raise SmokeFailure(f"logging in at /admin/login/ answered {signed_in.status_code}")
        for path in ("/admin/", "/api/docs"):
            page = browser.get(f"{stack.base}{path}", timeout=10)
            if page.status_code != 200:
                raise SmokeFailure(f"{path} as staff answered {page.status_code}")
        stylesheet = browser.get(f"{stack.base}/static/admin/css/base.css", timeout=10)
        if stylesheet.status_code != 200:
            raise SmokeFailure(f"the admin's stylesheet answered {stylesheet.status_code}")
        step("/admin/login/ 200; /admin/ and /api/docs 200 as staff; static files served")

        health = requests.get(f"{stack.base}/health", timeout=10).json()
        if health["status"] != "ok" or set(health["services"].values()) != {"ok"}:
            raise SmokeFailure(f"/health: {health}")
        hidden = health_with_transport_hidden(stack)
        if (hidden["status_code"], hidden["status"], hidden["services"]["broker"]) != (200, "degraded", "error"):
            raise SmokeFailure(f"/health with kombu's Redis transport unimportable: {hidden}")
        step("/health ok; degraded with the broker failing when its transport cannot be imported")

        for name in ("beat", "worker", "web"):
            seconds = stack.stop(name)
            step(f"{name} stopped {seconds:.1f} s after SIGTERM, nothing of its process group left")
        for name, process in stack.processes.items():
            assert process.popen is not None
            log = process.log.read_text(errors="replace")
            if "Traceback" in log or "ModuleNotFoundError" in log:
                raise SmokeFailure(f"{name}'s log holds a traceback:\n{process.tail()}")
            # Once the entrypoint's preparation has printed its last line, the process itself writes only
            # log records: one JSON object a line, whatever it is (granian, Celery's worker, beat).
            served = log.split(LAST_PREPARATION_LINE[name], 1)[-1].splitlines()[1:]
            not_json = [line for line in served if not (is_json_object(line) or CELERY_NOTICE.fullmatch(line))]
            if not served or not_json:
                raise SmokeFailure(f"{name} wrote lines that are not JSON objects: {not_json[:3]}")
        step("every line web, worker and beat wrote once running is one JSON object")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="a virtualenv holding only requirements.txt")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SMOKE_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to create the database registry_smoke",
    )
    parser.add_argument("--redis-url", default=os.environ.get("SMOKE_REDIS_URL", "redis://127.0.0.1:6379/11"))
    arguments = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="registry-smoke-") as work:
        stack = Stack(
            venv=arguments.venv.resolve(),
            database_url=recreate_database(arguments.database_url, "registry_smoke"),
            redis_url=arguments.redis_url,
            work=Path(work),
        )
        flush_redis(stack.redis_url)
        try:
            run(stack)
        except (SmokeFailure, AssertionError, KeyError, ValueError) as failure:
            print(f"\nSMOKE TEST FAILED: {failure}", file=sys.stderr)
            for process in stack.processes.values():
                print(f"\n--- {process.name} ({process.log.name}), last lines ---\n{process.tail()}", file=sys.stderr)
            return 1
        finally:
            stack.kill_all()
    step(f"production smoke test passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
