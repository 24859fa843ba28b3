"""Benchmark of the read path against a bare Starlette server returning the very same bytes.

Measures, interleaved over ``BENCH_ROUNDS`` rounds (default 3) of ``BENCH_SECONDS`` (5) per run,
with ``wrk -t2 -c16`` over loopback, for the list (``limit`` at its maximum), the detail and the
selection (``capability=code&min_score=0.5&limit=100``) of a registry of 1,000 models with 5
capabilities, 3 parameters and an endpoint each:

- ``bare``: a Starlette app on uvicorn returning the read's exact bytes (the ceiling);
- ``django``: a bare Django view returning the same bytes through the production server and middleware;
- ``hit``: the registry, cache warm (JWT check + cache hit);
- ``miss``: the registry with the cache disabled (the lean path builds every body);
- ``304``: the registry answering ``If-None-Match`` with the current ETag.

The registry runs as production runs it (``registry_project.web``: granian, its access log on),
with ``BENCH_WEB_WORKERS`` workers (default 2), as does uvicorn. Every figure is also given as a
ratio to ``bare`` of the same round (median over the rounds), because a shared machine's noise
moves absolute figures. Then: SQL queries per request with 1,000 and 10,000 models (a miss with
no model document stored, a miss with them stored, and a hit), and the peak RSS of the registry's
workers. Prints one table and writes it as JSON to
``BENCH_READ_JSON`` (default bench/results/bench_read.json).

``BENCH_COMPARE_SERVERS=1`` adds the hit and the Django view of each read on gunicorn (sync and
gthread) in the same rounds: how the production server was chosen (docs/BENCHMARKS.md).

Runs in a schema of its own (``bench_read_<pid>``) of BENCH_DATABASE_URL's database and in the
Redis database of BENCH_REDIS_URL (default db 14), both emptied at the end. Needs ``wrk``.
``BENCH_READS`` (comma-separated names of ``READS``) measures only some reads.
"""

# ruff: noqa: S603 - the processes started are this repository's servers and wrk, with fixed arguments

from __future__ import annotations

import hashlib
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
from datetime import timedelta
from pathlib import Path
from typing import Any

from environment import ROOT, configure

configure(log_level="info")  # as production (docker-compose.yml)
SCHEMA = f"bench_read_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("JWT_ACCESS_TOKEN_MINUTES", "60")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
METRICS_DIR = Path(tempfile.mkdtemp(prefix="bench-read-prometheus-"))
WORK_DIR = Path(tempfile.mkdtemp(prefix="bench-read-"))  # bodies and server logs, kept when a run fails
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
os.environ["BENCH_BODIES_DIR"] = str(WORK_DIR)
os.environ["WEB_CONCURRENCY"] = os.environ.get("BENCH_WEB_WORKERS", "2")  # the registry's servers, as uvicorn's

import django  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import sql  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from discovery.models import ProviderSource, SourceKind  # noqa: E402
from registry.access.accounts import clear_local_access  # noqa: E402
from registry.models import (  # noqa: E402
    EndpointType,
    ModelCapability,
    ModelDocument,
    ModelEndpoint,
    ModelParameter,
    ModelRuntime,
    ModelType,
    Provider,
    RegisteredModel,
)
from registry_project import web  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = max(int(os.environ.get("BENCH_ROUNDS", "3")), 1)
WORKERS = int(os.environ["WEB_CONCURRENCY"])
CONNECTIONS = 16
OUTPUT = Path(os.environ.get("BENCH_READ_JSON") or ROOT / "bench" / "results" / "bench_read.json")
CAPABILITIES = ("code", "text", "reasoning", "vision", "tools")
READS = {
    "list": "/models?limit=500",
    "detail": "/models/bench-0500",
    "select": "/models/select?capability=code&min_score=0.5&limit=100",
    "explain": "/models/select",
}
# BENCH_READS=explain,detail measures only those reads (a focused run; the report is then partial).
if os.environ.get("BENCH_READS"):
    READS = {name: path for name, path in READS.items() if name in os.environ["BENCH_READS"].split(",")}
# Reads that are POSTs, with their bodies: the explainable selection over the whole registry.
POST_BODIES = {
    "explain": json.dumps(
        {"capabilities": {"code": 0.5}, "max_latency_p95": 2.0, "max_error_rate": 0.05, "limit": 10}
    ).encode()
}
# Ratios to bare Starlette the issue asks for (docs/BENCHMARKS.md).
TARGETS = {("list", "hit"): 0.4, ("detail", "hit"): 0.25, ("select", "hit"): 0.3}
TARGETS |= {("list", "miss"): 0.02, ("detail", "miss"): 0.1, ("select", "miss"): 0.01}
# Issue 13: the explainable selection stays within the selection's targets.
TARGETS |= {("explain", "hit"): 0.3, ("explain", "miss"): 0.01}
MAX_QUERIES = 8
GZIP_SIZES: dict[str, int | None] = {}  # bytes on the wire with Accept-Encoding: gzip (None: sent as is)
MAX_RSS_MIB = 150


def grow_registry_to(count: int, source: ProviderSource) -> None:
    """Models as discovery leaves them: 5 capabilities, 3 parameters, an endpoint and a runtime row each (bulk)."""
    start = RegisteredModel.objects.count()
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"bench-{index:04d}",
            display_name=f"Bench model {index}",
            provider=Provider.OLLAMA,
            model_type=ModelType.CHAT,
            version="1",
            description="A model of the read benchmark, with a description of ordinary length.",
            source=source,
            context_window=8192,
            details={"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
        )
        for index in range(start, count)
    )
    ModelCapability.objects.bulk_create(
        ModelCapability(model=model, capability=name, capability_score=((model.pk * 7 + offset * 13) % 100) / 100)
        for model in models
        for offset, name in enumerate(CAPABILITIES)
    )
    ModelParameter.objects.bulk_create(
        ModelParameter(model=model, parameter_name=name, default_value=value)
        for model in models
        for name, value in (("temperature", 0.7), ("top_p", 0.9), ("num_ctx", 8192))
    )
    ModelEndpoint.objects.bulk_create(
        ModelEndpoint(
            model=model, endpoint_type=EndpointType.LOCAL, endpoint_url="http://127.0.0.1:11434", source=source
        )
        for model in models
    )
    # Every model checked by its Ollama host (the worst case of the runtime query), every other one loaded.
    checked = timezone.now()
    ModelRuntime.objects.bulk_create(
        ModelRuntime(
            model=model,
            source=source,
            loaded=model.pk % 2 == 0,
            size_vram=2_000_000_000 if model.pk % 2 == 0 else None,
            context_length=8192 if model.pk % 2 == 0 else None,
            expires_at=checked + timedelta(minutes=5) if model.pk % 2 == 0 else None,
            checked_at=checked,
        )
        for model in models
    )


def setup() -> tuple[str, ProviderSource]:
    call_command("migrate", interactive=False, verbosity=0)
    source = ProviderSource.objects.create(name="bench-ollama", kind=SourceKind.OLLAMA, base_url="http://127.0.0.1:1")
    grow_registry_to(1000, source)
    with connection.cursor() as cursor:
        # What autovacuum does on a live registry: statistics, and the visibility map that lets the
        # selections read capability scores from their covering index alone.
        cursor.execute("VACUUM (ANALYZE) models, model_capabilities, model_endpoints, model_runtime")
    user = User.objects.create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    return str(AccessToken.for_user(user)), source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (WORK_DIR / f"{self.name}.log").open("wb")
        argv = [part.replace("{port}", str(self.port)) for part in self.command]
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
        )

    def wait_until_up(self, probe: str) -> None:
        deadline = time.monotonic() + 60
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode} (log in {WORK_DIR})")
            try:
                if requests.get(self.base + probe, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} did not start (log in {WORK_DIR})")

    def worker_peak_rss_mib(self) -> float:
        """The largest peak RSS (VmHWM) among the server's worker processes."""
        assert self.process is not None
        peaks = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                status = Path(f"/proc/{child.pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return max(peaks, default=0.0)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def registry_server(name: str, **env: str) -> Server:
    command = web.command(application="bench.read_server:application", host="127.0.0.1", port="{port}")
    return Server(name, command, env)


def gunicorn_server(name: str, *extra: str) -> Server:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "bench.read_server:application", "--bind", "127.0.0.1:{port}", "--workers", str(WORKERS)]
    return Server(name, [*command, "--access-logfile", "-", *extra])


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"unreadable latency {text!r} in wrk's output")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, headers: dict[str, str], seconds: int = SECONDS, body: bytes | None = None) -> Run:
    """One wrk run: requests/s and latency percentiles; every response must be a 2xx or 3xx."""
    command = [
        shutil.which("wrk") or "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if body is not None:
        script = WORK_DIR / f"post-{hashlib.blake2b(body, digest_size=6).hexdigest()}.lua"
        lua_body = body.decode().replace("\\", "\\\\").replace('"', '\\"')
        script.write_text(
            f'wrk.method = "POST"\nwrk.body = "{lua_body}"\nwrk.headers["Content-Type"] = "application/json"\n'
        )
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors on {url} (server logs in {WORK_DIR}):\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None:
        raise SystemExit(f"unreadable wrk output:\n{output}")
    return Run(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)))


def capture_bodies(server: Server, token: str) -> dict[str, str]:
    """Each read's exact bytes (for the bare servers) and its ETag (for the 304 runs)."""
    etags = {}
    for name, path in READS.items():
        body = POST_BODIES.get(name)
        method = "POST" if body is not None else "GET"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        response = requests.request(method, server.base + path, data=body, headers=headers, timeout=60)
        response.raise_for_status()
        (WORK_DIR / f"{name}.json").write_bytes(response.content)
        etags[name] = response.headers["ETag"]
        gzip_headers = {**headers, "Accept-Encoding": "gzip"}
        zipped = requests.request(method, server.base + path, data=body, headers=gzip_headers, stream=True, timeout=60)
        GZIP_SIZES[name] = len(zipped.raw.read()) if zipped.headers.get("Content-Encoding") == "gzip" else None
    return etags


def queries_per_read(
    client: Client, path: str, *, cached: bool, documents: bool = True, body: bytes | None = None
) -> int:
    """Queries of one read: a hit (``cached``), or a miss with the documents stored (or none, not ``documents``)."""
    if not cached:
        cache.clear()
        clear_local_access()
    if not documents:
        ModelDocument.objects.all().delete()
    with CaptureQueriesContext(connection) as context:
        response = client.get(path) if body is None else client.post(path, body, content_type="application/json")
    assert response.status_code == 200, (path, response.status_code)
    return len(context.captured_queries)


def query_counts(token: str, source: ProviderSource) -> dict[str, dict[str, dict[str, int]]]:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for models in (1000, 10_000):
        grow_registry_to(models, source)
        counts[str(models)] = {
            name: {
                # Worst case first: no document stored, every body built (and stored).
                "miss_no_documents": queries_per_read(
                    client, path, cached=False, documents=False, body=POST_BODIES.get(name)
                ),
                "miss": queries_per_read(client, path, cached=False, body=POST_BODIES.get(name)),
                "hit": queries_per_read(client, path, cached=True, body=POST_BODIES.get(name)),
            }
            for name, path in READS.items()
        }
    return counts


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("bench_read needs wrk (apt-get install wrk)")
    started = time.monotonic()
    token, source = setup()
    auth = {"Authorization": f"Bearer {token}"}
    registry = registry_server("registry")
    nocache = registry_server("registry-nocache", BENCH_NO_CACHE="1")
    uvicorn = [sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--host", "127.0.0.1", "--port", "{port}"]
    uvicorn += ["--workers", str(WORKERS), "--no-access-log", "--log-level", "warning"]
    bare = Server("starlette", uvicorn)
    compared: list[Server] = []
    if os.environ.get("BENCH_COMPARE_SERVERS"):
        compared = [gunicorn_server("gunicorn-sync"), gunicorn_server("gunicorn-gthread", "--threads", "4")]
    servers = [registry, nocache, *compared]
    try:
        registry.start()
        registry.wait_until_up("/healthz")
        etags = capture_bodies(registry, auth["Authorization"].split()[1])
        for server in (bare, nocache, *compared):
            server.start()
        bare.wait_until_up(f"/bare/{next(iter(READS))}")
        for server in (nocache, *compared):
            server.wait_until_up("/healthz")
        # The bare servers answer a GET with a POST read's bytes: the same bytes on the wire back.
        variants: dict[str, tuple[Server, str, dict[str, str], bytes | None]] = {}
        for name, path in READS.items():
            body = POST_BODIES.get(name)
            variants[f"{name}/bare"] = (bare, f"/bare/{name}", {}, None)
            variants[f"{name}/django"] = (registry, f"/bench/bare/{name}", {}, None)
            variants[f"{name}/hit"] = (registry, path, auth, body)
            variants[f"{name}/miss"] = (nocache, path, auth, body)
            if body is None:  # a POST has no 304 (RFC 9110)
                variants[f"{name}/304"] = (registry, path, {**auth, "If-None-Match": etags[name]}, None)
            for server in compared:
                variants[f"{name}/django {server.name}"] = (server, f"/bench/bare/{name}", {}, None)
                variants[f"{name}/hit {server.name}"] = (server, path, auth, body)
        for server, path, headers, body in variants.values():  # warm: imports, connections, the cache entries
            wrk(server.base + path, headers, seconds=1, body=body)
        runs: dict[str, list[Run]] = {key: [] for key in variants}
        for round_number in range(ROUNDS):
            # Interleaved: each round measures every variant once, so a noisy minute hits all alike.
            for key, (server, path, headers, body) in variants.items():
                runs[key].append(wrk(server.base + path, headers, body=body))
            print(f"bench_read: round {round_number + 1}/{ROUNDS} done", file=sys.stderr, flush=True)
        rss = max(server.worker_peak_rss_mib() for server in servers)
    finally:
        for server in (bare, *servers):
            server.stop()
    counts = query_counts(token, source)
    report = build_report(runs, counts, rss, time.monotonic() - started)
    print_report(report)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench_read: written to {OUTPUT}", file=sys.stderr)
    shutil.rmtree(WORK_DIR)  # kept only when a run fails, for the servers' logs
    return 0


def build_report(runs: dict[str, list[Run]], counts: dict[str, Any], rss: float, seconds: float) -> dict[str, Any]:
    rows = []
    for key, measured in runs.items():
        read, variant = key.split("/", 1)
        ratios = [run.rps / base.rps for run, base in zip(measured, runs[f"{read}/bare"], strict=True)]
        target = TARGETS.get((read, variant))
        ratio = statistics.median(ratios)
        rows.append(
            {
                "read": read,
                "variant": variant,
                "rps": round(statistics.median(run.rps for run in measured), 1),
                "p50_ms": round(statistics.median(run.p50_ms for run in measured), 2),
                "p99_ms": round(statistics.median(run.p99_ms for run in measured), 2),
                "ratio_to_bare": round(ratio, 4),
                "ratios_by_round": [round(value, 4) for value in ratios],
                "target": target,
                "met": None if target is None else ratio >= target,
            }
        )
    body_sizes = {name: (WORK_DIR / f"{name}.json").stat().st_size for name in READS}
    misses = ("miss", "miss_no_documents")
    worst = max(count[kind] for per_size in counts.values() for count in per_size.values() for kind in misses)
    return {
        "setup": {
            "models": 1000,
            "reads": READS,
            "body_bytes": body_sizes,
            "gzip_bytes": GZIP_SIZES,
            "server": "registry_project.web (granian WSGI, access log on)",
            "workers": WORKERS,
            "wrk": f"-t2 -c{CONNECTIONS} -d{SECONDS}s",
            "rounds": ROUNDS,
            "cpus": os.cpu_count(),
        },
        "rows": rows,
        "queries": counts,
        "queries_ok": worst <= MAX_QUERIES
        and all(per_size == counts["1000"] for per_size in counts.values())
        and all(count["hit"] == 0 for per_size in counts.values() for count in per_size.values()),
        "worker_peak_rss_mib": round(rss, 1),
        "rss_ok": rss < MAX_RSS_MIB,
        "seconds": round(seconds),
    }


def print_report(report: dict[str, Any]) -> None:
    setup = report["setup"]
    print(
        f"read path: {setup['models']} models; {setup['workers']} workers; wrk {setup['wrk']}; "
        f"median of {setup['rounds']} interleaved rounds; bodies {setup['body_bytes']}"
    )
    print(f"{'read':<7} {'variant':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/ bare':>8}  target")
    for row in report["rows"]:
        target = "" if row["target"] is None else f">= {row['target']} {'met' if row['met'] else 'MISSED'}"
        print(
            f"{row['read']:<7} {row['variant']:<24} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['ratio_to_bare']:>8.4f}  {target}"
        )
    for models, per_read in report["queries"].items():
        figures = ", ".join(
            f"{name} {c['miss']} (no document stored {c['miss_no_documents']}, hit {c['hit']})"
            for name, c in per_read.items()
        )
        print(f"SQL queries per request, {models} models: {figures}")
    state = "met" if report["queries_ok"] else "MISSED"
    print(f"queries: {state} (at most {MAX_QUERIES}, the same at 1,000 and 10,000 models, none on a hit)")
    rss_state = "met" if report["rss_ok"] else "MISSED"
    print(f"worker peak RSS: {report['worker_peak_rss_mib']} MiB (target < {MAX_RSS_MIB} MiB: {rss_state})")
    print(f"bench_read: {report['seconds']} s")


if __name__ == "__main__":
    try:
        status = main()
    finally:
        cache.clear()  # BENCH_REDIS_URL's database only
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
    sys.exit(status)
