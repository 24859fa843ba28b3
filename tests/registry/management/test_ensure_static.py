"""``manage.py ensure_static``: a checkout started with DEBUG off serves the admin, not a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

ADMIN_LOGIN = (
    "import django; django.setup()\n"
    "from django.core.management import call_command\n"
    "from django.test import Client\n"
    "{prepare}\n"
    "print(Client(raise_request_exception=False).get('/admin/login/', HTTP_HOST='localhost').status_code)\n"
)


def admin_login_status(tmp_path: Path, prepare: str) -> tuple[int, str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"STATIC_MANIFEST", "LOG_FORMAT"}},
        "DJANGO_SETTINGS_MODULE": "registry_project.settings",
        "DEBUG": "false",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "LOG_FORMAT": "text",
    }
    result = subprocess.run(
        [sys.executable, "-c", ADMIN_LOGIN.format(prepare=prepare)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1]), result.stdout + result.stderr


def test_without_collected_files_the_manifest_storage_fails_the_admin(tmp_path: Path) -> None:
    status, output = admin_login_status(tmp_path, "pass")
    assert status == 500
    assert "Missing staticfiles manifest entry" in output


def test_ensure_static_collects_what_the_admin_needs_then_does_nothing(tmp_path: Path) -> None:
    status, output = admin_login_status(tmp_path, "call_command('ensure_static')")
    assert status == 200
    assert "static files: collecting" in output
    assert (tmp_path / "static" / "staticfiles.json").is_file()

    status, output = admin_login_status(tmp_path, "call_command('ensure_static')")
    assert status == 200
    assert "static files: ready" in output
