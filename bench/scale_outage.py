"""A PostgreSQL outage under usage clients: every acknowledged record is stored once it is back, none twice.

The registry runs as production runs it (``registry_project.web``: granian, ``BENCH_WEB_WORKERS``
workers, default 2) with ``PLATFORM_API_COMPAT=alfred``; its ``DATABASE_URL`` points at a TCP proxy
(tests/faults.py) in front of PostgreSQL. ``BENCH_OUTAGE_CLIENTS`` (50) clients post the router's
metrics to ``/api/v1/models/{ref}/usage`` with a platform token (``BENCH_OUTAGE_AUTH=token``, the
default) or, with ``BENCH_OUTAGE_AUTH=trusted``, with none from a trusted network (docker-compose's
router: ``PLATFORM_TRUSTED_NETWORKS`` is the loopback), ``BENCH_OUTAGE_RATE`` (5) posts a
second each, each with a ``request_id`` of its own; a post answered otherwise than 2xx, or not at
all, is retried with the same id until it is answered (as the router does), and one post in twenty
repeats an id already answered (a retry whose first answer was lost). After ``BENCH_WARM_SECONDS``
(10) the proxy is cut for ``BENCH_OUTAGE_SECONDS`` (60), then restored; the clients go on for
``BENCH_WARM_SECONDS`` more and stop. The drain (``usage_buffer_drain``, what the beat task runs)
runs every ``BENCH_DRAIN_INTERVAL`` (2) seconds throughout, through the same proxy, in this process.

Figures, against their goals: records acknowledged = records stored after recovery (the ids
answered 2xx are exactly the ids stored), none twice, and no post answered otherwise than 2xx
during the outage; the time the buffer took to drain after recovery is printed for information.
Token-less, also: no audit row written by the posts, and every post on the record as a count
(trusted_network_reads), those the server counted during the outage included.

Runs in a schema of its own (``bench_outage_<pid>``) of BENCH_DATABASE_URL's database and in the
Redis database of BENCH_REDIS_URL (default db 14), whose buffer keys it empties; the schema is
dropped at the end. Not a test: ``make bench-scale`` runs it; runnable alone.
"""

# ruff: noqa: S603 - the process started is this repository's web server, with fixed arguments

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from environment import ROOT, configure

DATABASE_URL = configure(log_level="warning")
SCHEMA = f"bench_outage_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
METRICS_DIR = Path(tempfile.mkdtemp(prefix="bench-outage-prometheus-"))
WORK_DIR = Path(tempfile.mkdtemp(prefix="bench-outage-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

CLIENTS = int(os.environ.get("BENCH_OUTAGE_CLIENTS", "50"))
RATE = float(os.environ.get("BENCH_OUTAGE_RATE", "5"))
OUTAGE_SECONDS = float(os.environ.get("BENCH_OUTAGE_SECONDS", "60"))
WARM_SECONDS = float(os.environ.get("BENCH_WARM_SECONDS", "10"))
DRAIN_INTERVAL = float(os.environ.get("BENCH_DRAIN_INTERVAL", "2"))
DRAIN_TIMEOUT = float(os.environ.get("BENCH_DRAIN_TIMEOUT", "600"))
WORKERS = os.environ.get("BENCH_WEB_WORKERS", "2")
AUTH = os.environ.get("BENCH_OUTAGE_AUTH", "token")
if AUTH not in ("token", "trusted"):
    raise SystemExit(f"BENCH_OUTAGE_AUTH must be token or trusted, not {AUTH!r}")

import django  # noqa: E402
import jwt  # noqa: E402
import requests  # noqa: E402

django.setup()

from auditlog.models import LogEntry  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402
from psycopg import sql  # noqa: E402

from registry.models import ModelUsage, RegisteredModel, TrustedNetworkRead  # noqa: E402
from registry.operations import usage_buffer  # noqa: E402
from registry.telemetry.buffering import usage_buffer_drain  # noqa: E402
from registry_project import web  # noqa: E402
from tests.faults import TcpProxy  # noqa: E402

BUFFER_KEYS = (usage_buffer.STREAM, usage_buffer.RECORDS, usage_buffer.DEAD, usage_buffer.LOCK)


@dataclass
class Tally:
    """What the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    outage_statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0  # no answer at all (connection error, timeout)
    repeats: int = 0
    outage: bool = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def platform_token() -> str:
    """A token as the platform's auth service mints it for the router: the service role, no database to check."""
    now = int(time.time())
    claims = {
        "sub": "outage-bench-router",
        "role": "authenticated",
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "app_metadata": {"registry_role": "service"},
    }
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM)


def client(url: str, token: str | None, tally: Tally, stop: threading.Event, seed: int) -> None:
    session = requests.Session()
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    chance = random.Random(seed)  # noqa: S311 - which posts repeat an id, not a secret
    mine: list[str] = []
    interval = 1.0 / RATE
    next_at = time.monotonic() + chance.random() * interval
    while not stop.is_set():
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        repeat = bool(mine) and chance.random() < 0.05
        request_id = chance.choice(mine) if repeat else uuid.uuid4().hex
        metric = {"request_id": request_id, "content_token_count": 100, "response_token_count": 20, "latency": 0.4}
        while True:  # the router retries with the same id until it is answered
            try:
                response = session.post(url, json=metric, timeout=10)
                status = response.status_code
            except requests.RequestException:
                status = 0
            with tally.lock:
                if status == 0:
                    tally.failures += 1
                else:
                    tally.statuses[status] += 1
                    if tally.outage:
                        tally.outage_statuses[status] += 1
                if 200 <= status < 300:
                    tally.acknowledged.add(request_id)
                    tally.repeats += repeat
            # After the stop too: a post sent must be answered, or its fate is unknown to the count.
            if 200 <= status < 300:
                break
            time.sleep(0.2)
        if not repeat:
            mine.append(request_id)


def drainer(stop: threading.Event, drained: list[dict[str, object]]) -> None:
    while not stop.is_set():
        outcome = usage_buffer_drain()
        if outcome.records or outcome.already_applied or outcome.dead:
            drained.append(outcome.as_dict())
        connections.close_all()  # as a task ends: the next run opens a fresh connection
        stop.wait(DRAIN_INTERVAL)


def main() -> int:
    call_command("migrate", interactive=False, verbosity=0)
    usage_buffer.client().delete(*BUFFER_KEYS)
    model = RegisteredModel.objects.create(
        name="outage-bench:latest", display_name="Outage bench", provider="ollama", model_type="chat"
    )
    database = urlsplit(DATABASE_URL)
    proxy = TcpProxy((database.hostname or "127.0.0.1", database.port or 5432))
    proxied = database._replace(netloc=f"{database.username or 'postgres'}@127.0.0.1:{proxy.port}").geturl()
    # This process (the drain) goes through the proxy too: it meets the outage as a worker would.
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": proxied,
        "PLATFORM_API_COMPAT": "alfred",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        "WEB_CONCURRENCY": WORKERS,
        "WEB_ACCESS_LOG": "false",
        "DB_CONNECT_TIMEOUT": "2",
        # Token-less: the clients' loopback address is trusted; the counts are flushed every second.
        "PLATFORM_TRUSTED_NETWORKS": "127.0.0.1/32" if AUTH == "trusted" else "",
        "PLATFORM_READ_COUNTS_FLUSH_SECONDS": "1",
    }
    log = (WORK_DIR / "web.log").open("wb")
    command = web.command(host="127.0.0.1", port=str(port))
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the web server did not start (log in {WORK_DIR})")
            time.sleep(0.3)
        token = platform_token() if AUTH == "token" else None
        url = f"{base}/api/v1/models/{model.name}/usage"
        tally = Tally()
        stop_clients, stop_drain = threading.Event(), threading.Event()
        drained: list[dict[str, object]] = []
        threads = [
            threading.Thread(target=client, args=(url, token, tally, stop_clients, n), daemon=True)
            for n in range(CLIENTS)
        ]
        drain_thread = threading.Thread(target=drainer, args=(stop_drain, drained), daemon=True)
        for thread in threads:
            thread.start()
        drain_thread.start()
        print(f"{CLIENTS} clients ({AUTH}) at {RATE:g} posts/s each; database up for {WARM_SECONDS:g} s", flush=True)
        time.sleep(WARM_SECONDS)
        with tally.lock:
            tally.outage = True
        proxy.cut()
        cut_at = time.monotonic()
        print(f"PostgreSQL cut for {OUTAGE_SECONDS:g} s", flush=True)
        time.sleep(OUTAGE_SECONDS)
        depth_at_restore = usage_buffer.buffer_state().records
        proxy.restore()
        with tally.lock:
            tally.outage = False
        restored_at = time.monotonic()
        print(f"restored after {restored_at - cut_at:.1f} s with {depth_at_restore} records buffered", flush=True)
        time.sleep(WARM_SECONDS)
        stop_clients.set()
        for thread in threads:
            thread.join(timeout=30)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while usage_buffer.buffer_state().entries and time.monotonic() < deadline:
            time.sleep(0.5)
        drained_after = time.monotonic() - restored_at
        stop_drain.set()
        drain_thread.join(timeout=120)
        state = usage_buffer.buffer_state()

        rows = ModelUsage.objects.filter(model_name=model.name)
        stored_ids = set(rows.values_list("request_id", flat=True))
        twice = rows.values("request_id").annotate(n=Count("id")).filter(n__gt=1).count()
        missing = len(tally.acknowledged - stored_ids)
        unacknowledged = len(stored_ids - tally.acknowledged)
        outage_non_2xx = sum(n for status, n in tally.outage_statuses.items() if not 200 <= status < 300)
        outage_answers = sum(tally.outage_statuses.values())
        print(
            f"answers: {dict(sorted(tally.statuses.items()))}, repeats: {tally.repeats}, "
            f"no answer within 10 s (then retried with the same id): {tally.failures}"
        )
        print(f"during the outage: {outage_answers} answers, {dict(sorted(tally.outage_statuses.items()))}")
        print(f"drains: {len(drained)} runs wrote {sum(int(str(d['records'])) for d in drained)} records")
        if drained:
            print(f"records a drain run wrote (median): {statistics.median(int(str(d['records'])) for d in drained)}")
        print(f"buffer at the end: {state}")
        ok = state.entries == 0 and state.dead_letters == 0
        figures = [
            (
                "outage records acknowledged = stored",
                f"{len(tally.acknowledged)} acknowledged, {len(stored_ids)} stored, {missing} missing, "
                f"{unacknowledged} never acknowledged",
                "equal, 0 missing",
                missing == 0 and unacknowledged == 0 and ok,
            ),
            ("outage records stored twice", str(twice), "0", twice == 0),
            (
                "outage posts answered other than 2xx while PostgreSQL was cut",
                f"{outage_non_2xx} of {outage_answers}",
                "0",
                outage_non_2xx == 0,
            ),
        ]
        if AUTH == "trusted":
            time.sleep(3)  # the web workers' next flush of their counts (every second)
            audited = LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count()
            counted = TrustedNetworkRead.objects.filter(method="POST").aggregate(n=Sum("count"))["n"] or 0
            answered = sum(tally.statuses.values())
            figures += [
                ("outage token-less posts' audit rows", str(audited), "0", audited == 0),
                (
                    "outage token-less posts counted",
                    f"{counted} counted, {answered} answered (+{tally.failures} unanswered)",
                    "answered <= counted <= answered + unanswered",
                    answered <= counted <= answered + tally.failures,
                ),
            ]
        for name, measured, goal, met in figures:
            print(f"FIGURE {name}: {measured} (goal {goal}) {'ok' if met else 'MISSED'}")
        print(f"INFO posts answered while PostgreSQL was cut: {outage_answers / OUTAGE_SECONDS:.0f}/s")
        print(f"INFO buffer drained {drained_after:.1f} s after recovery ({depth_at_restore} records buffered)")
        return 0 if all(met for *_, met in figures) else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        proxy.close()


if __name__ == "__main__":
    try:
        status = main()
    finally:
        connections.close_all()
        connection.settings_dict.update(
            HOST=urlsplit(DATABASE_URL).hostname, PORT=str(urlsplit(DATABASE_URL).port or 5432)
        )
        usage_buffer.client().delete(*BUFFER_KEYS)
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
    sys.exit(status)
