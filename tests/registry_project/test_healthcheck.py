"""The containers' health checks (registry_project/healthcheck.py) and beat's heartbeat."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.test import override_settings

from registry_project import healthcheck
from registry_project.beat import HeartbeatScheduler
from registry_project.celery import app


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        (None, "localhost"),
        ("", "localhost"),
        ("*", "localhost"),
        ("registry.example.com,localhost", "registry.example.com"),
        (" *, .example.com", "example.com"),
    ],
)
def test_the_probe_sends_a_host_that_allowed_hosts_accepts(allowed_hosts: str | None, host: str) -> None:
    assert healthcheck.probe_host(allowed_hosts) == host


@pytest.mark.django_db(transaction=True)
def test_web_check_is_healthy_when_the_operator_allows_only_its_own_host(
    live_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", live_server.url.rsplit(":", 1)[1])
    with override_settings(ALLOWED_HOSTS=["registry.example.com"]):
        # The old probe's Host: refused by Django's host check, so a healthy container would restart.
        monkeypatch.setenv("ALLOWED_HOSTS", "localhost")
        assert healthcheck.check_web() == "/health answered 400"
        monkeypatch.setenv("ALLOWED_HOSTS", "registry.example.com")
        assert healthcheck.check_web() is None
        assert healthcheck.main(["web"]) == 0


def test_web_check_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch, free_port: int) -> None:
    monkeypatch.setenv("PORT", str(free_port))
    problem = healthcheck.check_web(timeout=1)
    assert problem is not None
    assert problem.startswith("/health did not answer")
    assert healthcheck.main(["web"]) == 1


def test_beat_check_follows_the_heartbeats_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat = tmp_path / "beat.heartbeat"
    monkeypatch.setenv("BEAT_HEARTBEAT_FILE", str(heartbeat))
    monkeypatch.setenv("BEAT_HEARTBEAT_MAX_AGE", "60")
    assert "has not ticked yet" in (healthcheck.check_beat() or "")
    heartbeat.touch()
    assert healthcheck.check_beat() is None
    old = time.time() - 61
    os.utime(heartbeat, (old, old))
    assert "last ticked 61 s ago" in (healthcheck.check_beat() or "")
    assert healthcheck.main(["beat"]) == 1


# transaction=True: django-celery-beat's scheduler closes the database connection as beat would,
# which a test wrapped in one transaction cannot survive on PostgreSQL.
@pytest.mark.django_db(transaction=True)
def test_beats_scheduler_touches_the_heartbeat_on_every_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat = tmp_path / "beat" / "heartbeat"
    monkeypatch.setenv("BEAT_HEARTBEAT_FILE", str(heartbeat))
    scheduler = HeartbeatScheduler(app=app)
    scheduler.tick()
    assert heartbeat.is_file()
    first = heartbeat.stat().st_mtime_ns
    time.sleep(0.01)
    scheduler.tick()
    assert heartbeat.stat().st_mtime_ns > first


def test_an_unknown_check_is_a_usage_error() -> None:
    assert healthcheck.main(["worker"]) == 2
