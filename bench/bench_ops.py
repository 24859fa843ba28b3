"""Benchmark of the cached-read target, and of the WSGI servers it was chosen on, against PostgreSQL + Redis.

Target (ARCHITECTURE.md): cached reads (JWT check + cache hit) at no less than half the
throughput of a bare Django view returning the same bytes on the same server. Both are measured
with ``wrk`` over loopback against a real server process (gunicorn with the service's
gunicorn.conf.py; also gunicorn's gthread workers and, when importable, granian's WSGI mode),
``BENCH_WEB_WORKERS`` processes (default: the CPU count), the median of ``BENCH_ROUNDS``
interleaved runs of ``BENCH_SECONDS`` each.

Runs in a schema of its own (``bench_ops_<pid>``) of BENCH_DATABASE_URL's database and in Redis
database BENCH_REDIS_URL (default db 14), both emptied at the end. Needs ``wrk`` on the PATH.
"""

# ruff: noqa: S603 - the processes started are this repository's servers and wrk, with fixed arguments

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/registry_bench")
SCHEMA = f"bench_ops_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
os.environ.setdefault("JWT_SECRET", "bench-jwt-secret-not-for-production-0123456789")
os.environ.setdefault("LOG_LEVEL", "warning")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
METRICS_DIR = Path(tempfile.mkdtemp(prefix="bench-ops-prometheus-"))
LOG_DIR = Path(tempfile.mkdtemp(prefix="bench-ops-logs-"))  # the servers' logs, kept when a run fails
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

import django  # noqa: E402
import requests  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from psycopg import sql  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from registry.models import ModelCapability, ModelType, Provider, RegisteredModel  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORKERS = int(os.environ.get("BENCH_WEB_WORKERS") or os.cpu_count() or 2)
CONNECTIONS = 32
MODEL = "llama3.2:latest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup() -> str:
    """Schema, one model as discovery would leave it, a viewer and its access token."""
    call_command("migrate", interactive=False, verbosity=0)
    model = RegisteredModel.objects.create(
        name=MODEL, display_name="Llama 3.2", provider=Provider.OLLAMA, model_type=ModelType.CHAT
    )
    for capability, score in {"text": 0.8, "code": 0.6, "reasoning": 0.5}.items():
        ModelCapability.objects.create(model=model, capability=capability, capability_score=score)
    user = User.objects.create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    return str(AccessToken.for_user(user))


def server_commands(port: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    gunicorn = [str(bin_dir / "gunicorn"), "bench.ops_server:application", "--config", str(ROOT / "gunicorn.conf.py")]
    common = ["--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), "--access-logfile", "/dev/null"]
    commands = {
        "gunicorn sync": [*gunicorn, *common],
        "gunicorn gthread x4": [*gunicorn, *common, "--worker-class", "gthread", "--threads", "4"],
    }
    if (
        shutil.which("granian")
        or subprocess.run([sys.executable, "-c", "import granian"], capture_output=True).returncode == 0
    ):
        # Four blocking threads, as gthread: each thread holds a database connection, and granian's
        # default pool opened enough of them to exhaust PostgreSQL's max_connections.
        commands["granian wsgi x4"] = [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS), "--blocking-threads", "4", "--no-ws", "bench.ops_server:application",
        ]  # fmt: skip
    return commands


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def wrk(url: str, token: str | None, seconds: int | None = None) -> float:
    """Requests per second; every response must be a 2xx."""
    command = [
        shutil.which("wrk") or "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{seconds or SECONDS}s",
        "--timeout",
        "10s",
        url,
    ]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors on {url} (server logs in {LOG_DIR}):\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{output}")
    return float(match.group(1))


def measure(name: str, command: list[str], port: int, token: str, body_file: Path) -> tuple[float, float]:
    env = {**os.environ, "BENCH_BARE_BODY_FILE": str(body_file), "WEB_ACCESS_LOG": "false"}
    log = LOG_DIR / f"{name.replace(' ', '-')}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, process)
        time.sleep(1.0)  # every worker booted
        wrk(f"{base}/models/{MODEL}", token, seconds=2)  # warm: the cache entry, connections, imports
        # Interleaved rounds, median of each: a shared machine's noise hits both alike.
        cached_runs, bare_runs = [], []
        for _ in range(ROUNDS):
            cached_runs.append(wrk(f"{base}/models/{MODEL}", token))
            bare_runs.append(wrk(f"{base}/bench/bare", None))
        cached, bare = statistics.median(cached_runs), statistics.median(bare_runs)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return cached, bare


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench_ops needs wrk (apt-get install wrk)")
    token = setup()
    port = free_port()
    # The exact bytes of the cached read, for the bare view to return.
    body_file = Path(tempfile.mkstemp(prefix="bench-ops-body-")[1])
    probe = subprocess.Popen(
        server_commands(port)["gunicorn sync"],
        cwd=ROOT,
        env={**os.environ, "BENCH_BARE_BODY_FILE": os.devnull},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", probe)
        time.sleep(1.0)
        response = requests.get(
            f"http://127.0.0.1:{port}/models/{MODEL}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        response.raise_for_status()
        body = response.content
        body_file.write_bytes(body)
    finally:
        probe.send_signal(signal.SIGTERM)
        probe.wait(timeout=30)
    print(
        f"cached read body: {len(body)} bytes; {WORKERS} workers; "
        f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s, median of {ROUNDS} interleaved rounds"
    )
    for name, command in server_commands(port).items():
        cached, bare = measure(name, command, port, token, body_file)
        print(f"{name}: bare view: {bare:.0f} req/s")
        print(f"{name}: cached read (JWT + cache hit): {cached:.0f} req/s")
        target = "target >= 0.50; the chosen server" if name == "gunicorn sync" else "comparison"
        print(f"{name}: cached read / bare view: {cached / bare:.2f} ratio ({target})")
    body_file.unlink()
    shutil.rmtree(LOG_DIR)  # kept only when a run fails, for its server log


if __name__ == "__main__":
    try:
        main()
    finally:
        cache.clear()  # BENCH_REDIS_URL's database only
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
