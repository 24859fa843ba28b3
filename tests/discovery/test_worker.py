"""A real Celery worker, against Redis, runs the discovery task that beat's schedule entry names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import PeriodicTask

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.schedules import runtime_schedule_name, schedule_name
from discovery.services import source_save
from registry.models import ModelRuntime, RegisteredModel
from registry_project.celery import app
from tests.discovery.fakes.ollama import FakeOllama

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[str]]:
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL): the worker is a separate process")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": str(settings.REDIS_URL),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.JWT_SECRET,
        "LOG_FORMAT": "text",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "registry_project",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--purge",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(30), "the worker did not start:\n" + "".join(output)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_worker_runs_the_discovery_task_of_the_beat_schedule_entry(
    worker: subprocess.Popen[str], fake_ollama: FakeOllama
) -> None:
    source = source_save(source=ProviderSource(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url))
    entry = PeriodicTask.objects.get(name=schedule_name(source))

    # What beat does when the entry is due: send the named task with the entry's arguments.
    app.send_task(entry.task, args=json.loads(entry.args), kwargs=json.loads(entry.kwargs))

    deadline = time.monotonic() + 30
    run = None
    while time.monotonic() < deadline:
        run = DiscoveryRun.objects.filter(source=source, finished_at__isnull=False).first()
        if run is not None:
            break
        time.sleep(0.1)
    assert run is not None, "the worker recorded no finished run within 30 s"
    assert (run.status, run.trigger, run.models_added) == (RunStatus.SUCCEEDED, "schedule", 5)
    assert RegisteredModel.objects.count() == 5


def test_worker_runs_the_runtime_poll_and_the_discovery_it_queues_registers_the_loaded_model(
    worker: subprocess.Popen[str], fake_ollama: FakeOllama
) -> None:
    source = source_save(source=ProviderSource(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url))
    entry = PeriodicTask.objects.get(name=runtime_schedule_name(source))
    fake_ollama.load("qwen3:8b", size_vram=6_000_000_000)

    # The poll sees a loaded model that is not registered: it queues a discovery run, which registers it.
    app.send_task(entry.task, args=json.loads(entry.args), kwargs=json.loads(entry.kwargs))

    deadline = time.monotonic() + 30
    row = None
    while time.monotonic() < deadline:
        row = ModelRuntime.objects.filter(source=source, model__name="qwen3:8b").first()
        if row is not None:
            break
        time.sleep(0.1)
    assert row is not None, "no runtime row within 30 s"
    assert (row.loaded, row.size_vram) == (True, 6_000_000_000)
    run = DiscoveryRun.objects.get(source=source)
    assert (run.trigger, run.status) == ("runtime", RunStatus.SUCCEEDED)
