"""The launcher's own decisions, without starting it: the banner's credentials and the busy-port probe."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from registry_project.accesslog import STATIC_PREFIX, WithoutStaticFilesOrProbes
from registry_project.runall import Admin, banner, base_url, port_in_use

URL = "http://127.0.0.1:8700"


def test_banner_ends_with_a_just_generated_password_and_how_to_choose_another() -> None:
    lines = banner(url=URL, admin=Admin("admin", "s3cret-generated", False), logs=[], not_up=[])

    assert lines[1:5] == [
        f"  Admin:     {URL}/admin/",
        f"  API docs:  {URL}/api/docs",
        f"  Health:    {URL}/health",
        "  Username:  admin",
    ]
    assert lines[5] == "  Password:  s3cret-generated"
    assert "DJANGO_SUPERUSER_PASSWORD=<password> make run" in lines[-1]


def test_banner_says_an_existing_password_is_unchanged_and_shows_none() -> None:
    lines = banner(url=URL, admin=Admin("admin", None, False), logs=[], not_up=[])

    assert lines[-1].startswith("  Password:  unchanged")


def test_banner_names_the_environment_password_without_showing_it() -> None:
    lines = banner(url=URL, admin=Admin("ops", None, True), logs=[], not_up=[])

    assert lines[-2:] == ["  Username:  ops", "  Password:  the one in DJANGO_SUPERUSER_PASSWORD"]


def test_banner_names_the_log_files_before_the_urls_and_what_is_not_up() -> None:
    logs = [Path("/srv/data/logs/worker.log"), Path("/srv/data/logs/beat.log")]

    lines = banner(url=URL, admin=Admin("admin", None, False), logs=logs, not_up=["beat"])

    assert lines[0].startswith("runall: beat not up yet")
    assert lines[1] == "  Logs:      /srv/data/logs/worker.log, /srv/data/logs/beat.log"
    assert lines[2] == f"  Admin:     {URL}/admin/"


def test_a_wildcard_listen_address_is_shown_as_loopback() -> None:
    assert base_url("0.0.0.0", "8700") == "http://127.0.0.1:8700"
    assert base_url("localhost", "9000") == "http://localhost:9000"


def test_a_port_someone_listens_on_is_in_use_and_a_free_one_is_not(free_port: int) -> None:
    assert not port_in_use("127.0.0.1", free_port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        assert port_in_use("127.0.0.1", free_port)


def test_the_access_log_skips_the_static_url_django_serves(settings: Any) -> None:
    assert settings.STATIC_URL == STATIC_PREFIX


def test_the_access_log_filter_drops_static_files_only() -> None:
    def record(path: str) -> logging.LogRecord:
        return logging.LogRecord("granian.access", logging.INFO, "", 0, "%(path)s", ({"path": path},), None)

    assert not WithoutStaticFilesOrProbes().filter(record(f"{STATIC_PREFIX}admin/css/base.css"))
    assert not WithoutStaticFilesOrProbes().filter(record("/healthz"))
    assert WithoutStaticFilesOrProbes().filter(record("/models"))
    assert WithoutStaticFilesOrProbes().filter(record("/health"))
