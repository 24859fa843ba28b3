"""``python -m registry_project.web``: the production web server, granian (WSGI), configured from the environment.

One place builds the server's command line, for ``docker/entrypoint.sh web``, ``make run``
(registry_project/runall.py) and ``make bench`` alike, so the benchmark measures what production runs.
granian was chosen by measurement over gunicorn (sync and gthread): see docs/BENCHMARKS.md.

Environment:
- ``HOST`` / ``PORT`` (0.0.0.0 / 8700);
- ``WEB_CONCURRENCY``: worker processes (default 2 per CPU, at most 8);
- ``WEB_THREADS``: blocking threads per worker (default 1: more measured slower, the GIL); each may hold a database
  connection, so PostgreSQL must allow workers x threads connections per web container;
- ``WEB_ACCESS_LOG`` (true): one access-log line per request on stdout, formatted as every other line (LOG_FORMAT);
- ``WEB_GRACEFUL_TIMEOUT`` (20 s): how long a stopping worker may finish its requests;
- ``WEB_WORKERS_LIFETIME`` (0: never): recycle each worker after this many seconds (memory growth);
- ``WEB_HEADER_TIMEOUT`` (30 s): a client must send its request headers within this time;
- ``LOG_LEVEL`` (info).

Prometheus multiprocess mode: when no launcher set ``PROMETHEUS_MULTIPROC_DIR``, this module sets
and empties a private one before the workers start (they import prometheus_client).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from registry_project.env import env_bool, env_int, env_str

APPLICATION = "registry_project.wsgi:application"
# granian's loggers in its main process and its workers: the service's formatter, one line a record
# (registry_project/logs.py), and the access log without static files and probes (accesslog.py).
LOG_CONFIG = Path(__file__).resolve().parent / "server_logging.json"
# granian's default less its time, which every line of ours carries already.
ACCESS_LOG_FORMAT = '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'


def workers() -> int:
    return env_int("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1), 8), minimum=1)


def command(*, application: str = APPLICATION, host: str | None = None, port: str | None = None) -> list[str]:
    """The server's argv: ``python -m granian ...`` serving ``application``."""
    arguments = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        host or env_str("HOST", "0.0.0.0") or "",  # noqa: S104 - a container's port
        "--port",
        port or env_str("PORT", "8700") or "",
        "--workers",
        str(workers()),
        "--blocking-threads",
        str(env_int("WEB_THREADS", 1, minimum=1)),
        # HTTP/1.1 with keep-alive: what a router's connection pool speaks; no websockets here.
        "--http",
        "1",
        "--no-ws",
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(env_int("WEB_GRACEFUL_TIMEOUT", 20, minimum=1)),
        "--http1-header-read-timeout",
        str(env_int("WEB_HEADER_TIMEOUT", 30, minimum=1) * 1000),
        "--log-level",
        (env_str("LOG_LEVEL", "info") or "info").lower(),
        "--log-config",
        str(LOG_CONFIG),
    ]
    lifetime = env_int("WEB_WORKERS_LIFETIME", 0, minimum=0)
    if lifetime:
        arguments += ["--workers-lifetime", str(max(lifetime, 60))]
    if env_bool("WEB_ACCESS_LOG", True):
        arguments += ["--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT]
    return [*arguments, application]


def prepare_metrics_dir() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    private = Path(tempfile.gettempdir()) / f"model-registry-prometheus-{os.environ.get('PORT', '8700')}"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(private)


def main() -> None:
    prepare_metrics_dir()
    argv = command(application=sys.argv[1] if len(sys.argv) > 1 else APPLICATION)
    os.execv(argv[0], argv)  # noqa: S606 - our own server, fixed arguments


if __name__ == "__main__":
    main()
