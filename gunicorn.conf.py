"""gunicorn settings of the Model Registry, from the environment (``gunicorn -c gunicorn.conf.py``).

Workers: ``WEB_CONCURRENCY`` (default: 2 per CPU, at most 8), sync workers (the views are short
database and cache reads; see docs/operations.md for the measurements behind the choice).
Prometheus multiprocess mode: each worker writes its counters to ``PROMETHEUS_MULTIPROC_DIR``;
a dead worker's gauges are dropped by ``child_exit``. When no launcher set that directory, this
file sets and empties a private one, before any worker imports prometheus_client.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _private = Path(tempfile.gettempdir()) / f"model-registry-prometheus-{os.environ.get('PORT', '8700')}"
    shutil.rmtree(_private, ignore_errors=True)
    _private.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_private)

from prometheus_client import multiprocess

from registry_project import server_errors

# gunicorn's own 400/414/431 answers in the API's JSON error shape, not HTML.
server_errors.install()

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8700')}"  # noqa: S104 - a container's port
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1), 8))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
# Recycle workers now and then (memory growth of long-lived processes), not all at once.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
# Heartbeat files in memory: a slow disk (or a container's overlay) must not get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's documented advice
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "true").lower() in {"1", "true", "yes", "on"} else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# X-Forwarded-* are trusted from these addresses only (the reverse proxy).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "model-registry"
# Request line and header limits: above the application's (registry/api/limits.py), which answer
# first and in JSON; these only catch what is larger still (and answer JSON too, see server_errors).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)
