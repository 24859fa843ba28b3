"""The service's log formatter and filters, record by record (the production server's output: test_log_forgery.py)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from registry_project.logs import TEXT_CONTINUATION, DisallowedHostAsWarning, line_formatter

# A line break, a carriage return, the Unicode line separator, NEL, and ANSI colour and erase-line sequences.
CLIENT_TEXT = '/x\n2030-01-01 00:00:00 CRITICAL registry: forged\r\u2028\x85\x1b[31m\x1b[2K\x9b1m{"forged": 1}'
CLIENT_TEXT_ESCAPED = r'/x\n2030-01-01 00:00:00 CRITICAL registry: forged\r\u2028\x85\x1b[31m\x1b[2K\x9b1m{"forged": 1}'


def record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    return logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, message, args, sys.exc_info() if exc_info else None
    )


def test_a_text_line_escapes_every_character_that_would_start_another_line() -> None:
    line = line_formatter("text").format(record("Not Found: %s", CLIENT_TEXT))

    assert line.splitlines() == [line]
    assert not any(character in line for character in "\n\r\u2028\x85\x1b\x9b")
    assert line.endswith(f"Not Found: {CLIENT_TEXT_ESCAPED}")


def test_a_text_traceback_keeps_its_lines_indented_below_the_record() -> None:
    try:
        raise ValueError(CLIENT_TEXT)
    except ValueError:
        text = line_formatter("text").format(record("failed", exc_info=True))

    first, *details = text.split("\n")
    assert first.endswith("WARNING django.request: failed")
    assert details[0] == f"{TEXT_CONTINUATION}Traceback (most recent call last):"
    assert all(line.startswith(TEXT_CONTINUATION) for line in details)
    assert not any(character in text for character in "\r\u2028\x85\x1b\x9b")


def test_a_json_line_is_one_ascii_line_that_reads_back_as_the_message() -> None:
    line = line_formatter("json").format(record("Not Found: %s", CLIENT_TEXT))

    assert line.isascii()
    assert line.splitlines() == [line]
    assert json.loads(line)["message"] == f"Not Found: {CLIENT_TEXT}"


@pytest.mark.django_db
def test_a_host_outside_allowed_hosts_is_one_warning_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    response = Client().get("/models", HTTP_HOST="evil.example")

    assert response.status_code == 400
    [logged] = [entry for entry in caplog.records if entry.name == "django.security.DisallowedHost"]
    assert (logged.levelname, logged.exc_info, logged.exc_text) == ("WARNING", None, None)


def test_a_disallowed_host_is_not_logged_below_the_log_level() -> None:
    logger = logging.getLogger("django.security.DisallowedHost")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        entry = logging.LogRecord(logger.name, logging.ERROR, __file__, 1, "Invalid HTTP_HOST header", None, None)
        assert not DisallowedHostAsWarning().filter(entry)
    finally:
        logger.setLevel(previous)


CELERY_PROCESS = """
import logging
import django
django.setup()
from registry_project.celery import app
app.log.setup(loglevel="INFO")  # what `celery worker` and `celery beat` call before they run
logging.getLogger("celery.app.trace").warning('Task failed: x\\n{"level": "CRITICAL", "forged": true}')
logging.getLogger("discovery.tasks").info("model a\\r\\n\\u2028\\x1b[31mb")
"""


def test_the_worker_and_beat_log_one_json_object_a_line_like_the_web(tmp_path: Path) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if key not in {"LOG_FORMAT", "DEBUG"}},
        "DJANGO_SETTINGS_MODULE": "registry_project.settings",
        "DEBUG": "false",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REGISTRY_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", CELERY_PROCESS], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    lines = (result.stdout + result.stderr).splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["logger"] for record in records] == ["celery.app.trace", "discovery.tasks"]
    assert not any("forged" in record for record in records)
    assert records[0]["level"] == "WARNING"
