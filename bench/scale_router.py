"""Benchmark of the platform router's token-less read against the same read with a JWT (issue 21).

The registry runs as production runs it (``registry_project.web``: granian, ``BENCH_WEB_WORKERS``
workers, default 2, access log on) on PostgreSQL and Redis, with ``PLATFORM_API_COMPAT=alfred``,
``PLATFORM_TRUSTED_NETWORKS=127.0.0.0/8`` and 84 models (a router's refresh is the list and one
capability read per model: 85 requests). Measured, interleaved over ``BENCH_ROUNDS`` rounds
(default 5) of ``BENCH_SECONDS`` (4) with ``wrk -t2 -c16`` over loopback, as requests/s and as
the CPU the server's processes spent per request (steadier on a shared machine):

- ``GET /api/v1/models`` with no ``Authorization`` header (trusted for its address, as the router calls it);
- the same read with a service user's JWT.

Then one router refresh, request by request, and, once the web processes have flushed their counts
(``PLATFORM_READ_COUNTS_FLUSH_SECONDS``, 2 s here) and again after they stopped: the rows of
``trusted_network_reads`` and the ``access`` audit entries per client, route and minute, the reads
they count against the reads sent, and the ``registry_trusted_network_requests_total`` of ``/metrics``;
last, a refresh right before the server stops, whose reads its workers write as they exit.

Prints ``FIGURE <name>: <measured> (goal <goal>) ok|MISSED`` lines and writes them as JSON to
``BENCH_ROUTER_JSON`` (default bench/results/scale_router.json). Not a test; runnable alone:

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/registry_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/scale_router.py

``BENCH_SERVER_ROOT`` serves the registry from another checkout of the repository (an earlier commit,
``git archive <commit> | tar -x -C <dir>``), with this one's tables and figures: the "before" of a change.

Runs in a schema of its own (``bench_router_<pid>``) of BENCH_DATABASE_URL's database and in the
Redis database of BENCH_REDIS_URL (default db 14), both emptied at the end. Needs ``wrk``.
"""

# ruff: noqa: S603 - the processes started are this repository's server and wrk, with fixed arguments

from __future__ import annotations

import json
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from environment import ROOT, configure

configure(log_level="warning")
SCHEMA = f"bench_router_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("JWT_ACCESS_TOKEN_MINUTES", "60")
os.environ["PLATFORM_API_COMPAT"] = "alfred"
os.environ["PLATFORM_TRUSTED_NETWORKS"] = "127.0.0.0/8"
FLUSH_SECONDS = float(os.environ.get("BENCH_FLUSH_SECONDS", "2"))
os.environ["PLATFORM_READ_COUNTS_FLUSH_SECONDS"] = str(FLUSH_SECONDS)
METRICS_DIR = Path(tempfile.mkdtemp(prefix="bench-router-prometheus-"))
WORK_DIR = Path(tempfile.mkdtemp(prefix="bench-router-"))  # the server's log, kept when a run fails
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
os.environ["WEB_CONCURRENCY"] = os.environ.get("BENCH_WEB_WORKERS", "2")

import django  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

django.setup()

from auditlog.models import LogEntry  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max, Sum  # noqa: E402
from django.db.models.functions import TruncMinute  # noqa: E402
from psycopg import sql  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from registry.models import ModelCapability, ModelEndpoint, RegisteredModel, TrustedNetworkRead  # noqa: E402
from registry_project import web  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = max(int(os.environ.get("BENCH_ROUNDS", "5")), 1)
CONNECTIONS = 16
MODELS = 84
READ = "/api/v1/models"
OUTPUT = Path(os.environ.get("BENCH_ROUTER_JSON") or ROOT / "bench" / "results" / "scale_router.json")
# The code the server runs: this checkout, or an earlier one to measure what a change did.
SERVER_ROOT = Path(os.environ.get("BENCH_SERVER_ROOT") or ROOT)
GOAL_RATIO = 0.9  # token-less / JWT, the issue's
GOAL_ROWS = 1  # rows per client, route and minute


def setup() -> str:
    """The registry's tables, 84 models as a router sees them, and a service user's token."""
    call_command("migrate", interactive=False, verbosity=0)
    cache.clear()  # BENCH_REDIS_URL's database: no entry of another run (or another database) is served
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(name=f"router-{index:03d}:latest", provider="ollama", model_type="chat")
        for index in range(MODELS)
    )
    ModelCapability.objects.bulk_create(
        ModelCapability(model=model, capability=name, capability_score=score)
        for model in models
        for name, score in (("code", 0.8), ("text", 0.7), ("reasoning", 0.3))
    )
    ModelEndpoint.objects.bulk_create(
        ModelEndpoint(model=model, endpoint_type="local", endpoint_url="http://llm-service:11434") for model in models
    )
    user = User.objects.create(username="bench-router")
    user.groups.add(Group.objects.get(name="service"))
    return str(AccessToken.for_user(user))


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (WORK_DIR / "registry.log").open("wb")
        command = web.command(host="127.0.0.1", port=str(self.port))
        self.process = subprocess.Popen(
            command, cwd=SERVER_ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the registry exited with {self.process.returncode} (log in {WORK_DIR})")
            try:
                if requests.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the registry did not start (log in {WORK_DIR})")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    rps: float
    requests: int
    cpu_ms_per_request: float


def server_cpu_seconds(server: Server) -> float:
    """User and system CPU of the server's processes (granian's main process and its workers) so far."""
    assert server.process is not None
    main = psutil.Process(server.process.pid)
    total = 0.0
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wrk(server: Server, path: str, headers: dict[str, str], seconds: int = SECONDS) -> Run:
    """One wrk run: requests/s, requests completed and the server's CPU per request; every response a 2xx or 3xx.

    The CPU a request costs the server is the steadier figure on a shared machine: requests/s move
    with whatever else runs, the work of one request much less.
    """
    url = server.base + path
    cpu_before = server_cpu_seconds(server)
    command = [shutil.which("wrk") or "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = server_cpu_seconds(server) - cpu_before
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors on {url} (server log in {WORK_DIR}):\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    sent = re.search(r"(\d+) requests in", output)
    if rps is None or sent is None:
        raise SystemExit(f"unreadable wrk output:\n{output}")
    requests_done = int(sent.group(1))
    return Run(float(rps.group(1)), requests_done, 1000 * cpu / max(requests_done, 1))


def router_refresh(base: str) -> int:
    """What the router does to refresh its cache: the list, then each model's capabilities (no token)."""
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    listing = session.get(f"{base}{READ}", timeout=30)
    listing.raise_for_status()
    if len(listing.json()) != MODELS:
        raise SystemExit(f"the router's list has {len(listing.json())} models, not {MODELS}")
    sent = 1
    for model in listing.json():
        session.get(f"{base}{READ}/{model['id']}/capabilities", timeout=30).raise_for_status()
        sent += 1
    return sent


def trusted_requests_on_metrics(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=30).text
    return sum(
        float(value)
        for value in re.findall(r"^registry_trusted_network_requests_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )


@dataclass
class Record:
    """What the database holds of the token-less reads."""

    rows: int
    reads: int
    most_rows_per_client_route_minute: int
    access_entries: int
    rows_per_route: dict[str, int]


def record() -> Record:
    counts = TrustedNetworkRead.objects.aggregate(rows=Count("id"), reads=Sum("count"))
    per_key = (
        TrustedNetworkRead.objects.values("client_address", "route", "minute")
        .annotate(rows=Count("id"))
        .aggregate(most=Max("rows"))
    )
    # Access entries written since the change (reads wrote one each before): per client, route and minute too.
    access = (
        LogEntry.objects.filter(action=LogEntry.Action.ACCESS)
        .annotate(minute=TruncMinute("timestamp"))
        .values("remote_addr", "object_repr", "minute")
        .annotate(rows=Count("id"))
        .aggregate(most=Max("rows"))
    )
    per_route = dict(TrustedNetworkRead.objects.values("route").annotate(rows=Count("id")).values_list("route", "rows"))
    return Record(
        rows=counts["rows"] or 0,
        reads=counts["reads"] or 0,
        most_rows_per_client_route_minute=max(per_key["most"] or 0, access["most"] or 0),
        access_entries=LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count(),
        rows_per_route=per_route,
    )


def figure(name: str, measured: float | int, goal: str, ok: bool) -> dict[str, Any]:
    print(f"FIGURE {name}: {measured} (goal {goal}) {'ok' if ok else 'MISSED'}", flush=True)
    return {"name": name, "measured": measured, "goal": goal, "ok": ok}


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("scale_router needs wrk (apt-get install wrk)")
    token = setup()
    server = Server(free_port())
    jwt = {"Authorization": f"Bearer {token}"}
    variants = {"token-less": {}, "jwt": jwt}
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    sent_without_token = 0
    try:
        server.start()
        for name, headers in variants.items():  # warm: imports, connections, the cache entry, learnt headers
            run = wrk(server, READ, headers, seconds=1)
            sent_without_token += run.requests if name == "token-less" else 0
        for round_number in range(ROUNDS):
            # Interleaved: each round measures both, so a noisy minute hits both alike.
            for name, headers in variants.items():
                run = wrk(server, READ, headers)
                runs[name].append(run)
                sent_without_token += run.requests if name == "token-less" else 0
            print(f"scale_router: round {round_number + 1}/{ROUNDS} done", file=sys.stderr, flush=True)
        time.sleep(FLUSH_SECONDS + 1)  # every worker has flushed what the runs counted
        before_refresh = record()
        refresh_started = datetime.now(tz=UTC).replace(second=0, microsecond=0)
        refresh_sent = router_refresh(server.base)
        refresh_minutes = int((datetime.now(tz=UTC) - refresh_started).total_seconds() // 60) + 1
        time.sleep(FLUSH_SECONDS + 1)
        after_refresh = record()
        # The rows of the minutes the refresh ran in (its reads only: the runs before it ended earlier).
        refresh_rows = TrustedNetworkRead.objects.filter(minute__gte=refresh_started).count()
        on_metrics = trusted_requests_on_metrics(server.base)
        # A last refresh, then the server stopped at once: what its workers held is written as they exit.
        exit_sent = router_refresh(server.base)
    finally:
        server.stop()
    stopped = record()  # whatever a worker still held is written at its exit

    pairs = list(zip(runs["token-less"], runs["jwt"], strict=True))
    ratios = [free.rps / with_jwt.rps for free, with_jwt in pairs]
    ratio = statistics.median(ratios)
    # Requests per CPU-second, token-less over JWT: the throughput ratio of a saturated server.
    cpu_ratios = [with_jwt.cpu_ms_per_request / free.cpu_ms_per_request for free, with_jwt in pairs]
    cpu_ratio = statistics.median(cpu_ratios)
    figures = [
        figure("router_read_token_less_rps", round(statistics.median(r.rps for r in runs["token-less"])), "-", True),
        figure("router_read_jwt_rps", round(statistics.median(r.rps for r in runs["jwt"])), "-", True),
        figure("router_read_token_less_vs_jwt", round(ratio, 3), f">= {GOAL_RATIO}", ratio >= GOAL_RATIO),
        figure(
            "router_read_server_cpu_ms_token_less",
            round(statistics.median(r.cpu_ms_per_request for r in runs["token-less"]), 3),
            "-",
            True,
        ),
        figure(
            "router_read_server_cpu_ms_jwt",
            round(statistics.median(r.cpu_ms_per_request for r in runs["jwt"]), 3),
            "-",
            True,
        ),
        figure(
            "router_read_token_less_vs_jwt_per_cpu_second",
            round(cpu_ratio, 3),
            f">= {GOAL_RATIO}",
            cpu_ratio >= GOAL_RATIO,
        ),
        figure(
            "audit_rows_per_client_route_minute",
            stopped.most_rows_per_client_route_minute,
            f"<= {GOAL_ROWS}",
            stopped.most_rows_per_client_route_minute <= GOAL_ROWS,
        ),
        figure("access_audit_entries_written_by_reads", stopped.access_entries, "0", stopped.access_entries == 0),
        figure(
            "rows_written_by_one_router_refresh",
            refresh_rows,
            f"<= 2 a minute (for {refresh_sent} requests over {refresh_minutes} minute(s))",
            refresh_rows <= 2 * refresh_minutes,
        ),
        # wrk counts the responses it read; a request in flight when a run ends is counted by the server only.
        figure(
            "token_less_reads_recorded",
            stopped.reads,
            f">= {sent_without_token + refresh_sent + exit_sent} sent",
            stopped.reads >= sent_without_token + refresh_sent + exit_sent,
        ),
        figure(
            "reads_written_at_exit_vs_sent_before_stop",
            stopped.reads - after_refresh.reads - exit_sent,
            "0 (nothing lost when the server stops)",
            stopped.reads - after_refresh.reads == exit_sent,
        ),
        figure(
            "token_less_reads_on_metrics_vs_recorded",
            int(on_metrics) - after_refresh.reads,
            "0 (every counted read written)",
            int(on_metrics) == after_refresh.reads,
        ),
    ]
    report = {
        "setup": {
            "models": MODELS,
            "read": READ,
            "rounds": ROUNDS,
            "seconds": SECONDS,
            "workers": int(os.environ["WEB_CONCURRENCY"]),
            "flush_seconds": FLUSH_SECONDS,
            "server_root": str(SERVER_ROOT),
        },
        "ratios_by_round": [round(value, 3) for value in ratios],
        "cpu_ratios_by_round": [round(value, 3) for value in cpu_ratios],
        "rps_by_round": {name: [round(run.rps) for run in measured] for name, measured in runs.items()},
        "rows": {"after_runs": before_refresh.rows, "after_refresh": after_refresh.rows, "stopped": stopped.rows},
        "rows_per_route": stopped.rows_per_route,
        "figures": figures,
    }
    print(f"ratios by round: {report['ratios_by_round']}; req/s by round: {report['rps_by_round']}")
    print(f"per-CPU-second ratios by round: {report['cpu_ratios_by_round']}")
    print(f"rows: {report['rows']}; per route: {report['rows_per_route']}")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(WORK_DIR)  # kept only when a run fails, for the server's log
    return 0 if all(item["ok"] for item in figures) else 1


if __name__ == "__main__":
    status = 1
    try:
        status = main()
    finally:
        cache.clear()  # BENCH_REDIS_URL's database only
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
    sys.exit(status)
