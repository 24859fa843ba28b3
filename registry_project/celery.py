"""The Celery app shared by the worker, beat and the web process (which only enqueues)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import beat_init, setup_logging, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

app = Celery("registry_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# `make run` (registry_project/runall.py) prints its banner once every process is up. The worker and
# beat say so by creating a file in RUNALL_READY_DIR, which the launcher sets and empties; their
# logs go to files, so the launcher cannot watch for a "ready" line instead.
READY_DIR_VARIABLE = "RUNALL_READY_DIR"


def mark_ready(name: str) -> None:
    folder = os.environ.get(READY_DIR_VARIABLE)
    if folder:
        (Path(folder) / name).touch()


@worker_ready.connect
def _worker_is_ready(**kwargs: Any) -> None:
    mark_ready("worker")


@beat_init.connect
def _beat_is_ready(**kwargs: Any) -> None:
    mark_ready("beat")


@setup_logging.connect
def _log_as_the_service_does(**kwargs: Any) -> None:
    """The worker's and beat's lines through the service's formatter, not Celery's own.

    Connected, this signal stops Celery from configuring the root logger itself (its plain text
    lines would let a task's text start a line of its own): the worker and beat log exactly as the
    web process does, one JSON object a line in production (registry_project/logs.py).
    """
    from django.conf import settings

    from registry_project.logs import configure

    configure(settings.LOGGING)
