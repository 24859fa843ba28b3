"""Settings come from the environment and fail loudly, naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CONTROLLED = {"SECRET_KEY", "SECRET_KEY_FILE", "JWT_SECRET", "JWT_SECRET_FILE", "DEBUG", "LOG_LEVEL", "LOG_FORMAT"}


def load_settings(env: dict[str, str], code: str = "print('loaded')") -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly ``env`` for the controlled variables."""
    base = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    script = f"import django; django.setup()\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**base, "DJANGO_SETTINGS_MODULE": "registry_project.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_mode_without_secret_key_refuses_to_start() -> None:
    result = load_settings({"DEBUG": "false", "JWT_SECRET": "x" * 40})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


def test_production_mode_without_jwt_secret_refuses_to_start() -> None:
    result = load_settings({"SECRET_KEY": "k" * 50})
    assert result.returncode != 0
    assert "JWT_SECRET must be set" in result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("your-super-secret-jwt-token", "published demo value"),
        ("super-secret-jwt-token-with-at-least-32-characters-long", "published demo value"),
        ("dev-insecure-jwt-secret-do-not-use-in-production", "published demo value"),
        ("x" * 31, "shorter than 32 bytes"),
    ],
)
def test_production_mode_refuses_a_short_or_demo_secret_naming_it(name: str, value: str, reason: str) -> None:
    secrets = {"SECRET_KEY": "k" * 50, "JWT_SECRET": "j" * 40, name: value}
    result = load_settings({"DEBUG": "false", **secrets})
    assert result.returncode != 0
    assert f"{name} is a {reason}" in result.stderr or f"{name} is {reason}" in result.stderr
    assert value not in result.stderr


def test_production_mode_reads_a_long_secret_from_its_file(tmp_path: Path) -> None:
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text("j" * 32 + "\n")
    result = load_settings(
        {"DEBUG": "false", "SECRET_KEY": "k" * 32, "JWT_SECRET_FILE": str(jwt_file)},
        "from django.conf import settings; print(len(settings.JWT_SECRET))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "32"


def test_debug_mode_starts_with_a_development_key() -> None:
    result = load_settings({"DEBUG": "true"}, "from django.conf import settings; print(settings.SECRET_KEY[:3])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "dev"


def test_secret_can_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text("from-a-file-secret-0123456789abcdefghij\n")
    result = load_settings(
        {"SECRET_KEY_FILE": str(secret_file), "JWT_SECRET": "j" * 40},
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-a-file-secret-0123456789abcdefghij"


def test_malformed_boolean_names_the_variable() -> None:
    result = load_settings({"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_unknown_log_level_names_the_variable() -> None:
    result = load_settings({"DEBUG": "true", "LOG_LEVEL": "loud"})
    assert result.returncode != 0
    assert "LOG_LEVEL must be one of" in result.stderr


def test_production_logs_are_one_json_object_a_line() -> None:
    result = load_settings(
        {"SECRET_KEY": "k" * 50, "JWT_SECRET": "j" * 40, "LOG_LEVEL": "info"},
        "import logging; logging.getLogger('registry.test').info('hello %s', 'world')",
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    record = json.loads(lines[-1])
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["logger"] == "registry.test"


def test_log_level_filters_lower_levels() -> None:
    result = load_settings(
        {"SECRET_KEY": "k" * 50, "JWT_SECRET": "j" * 40, "LOG_LEVEL": "warning"},
        "import logging; logging.getLogger('registry.test').info('quiet'); logging.getLogger('x').warning('loud')",
    )
    assert result.returncode == 0, result.stderr
    assert "quiet" not in result.stderr
    assert "loud" in result.stderr


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("postgresql://u@db:5432/registry", "registry_project.db_backends.postgresql"),
        ("sqlite:////tmp/registry-test.sqlite3", "django_prometheus.db.backends.sqlite3"),
    ],
)
def test_database_url_selects_the_backend(url: str, engine: str) -> None:
    result = load_settings(
        {"DEBUG": "true", "DATABASE_URL": url},
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == engine


def test_trusted_networks_are_normalised_cidrs() -> None:
    code = "from django.conf import settings; print(settings.PLATFORM_TRUSTED_NETWORKS)"
    result = load_settings({"DEBUG": "true", "PLATFORM_TRUSTED_NETWORKS": "10.1.2.3/8, 192.168.0.9"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['10.0.0.0/8', '192.168.0.9/32']"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLATFORM_TRUSTED_NETWORKS", "10.0.0.0/8,internal"),
        ("PLATFORM_TRUSTED_PROXIES", "300.1.1.1"),
        ("PLATFORM_API_COMPAT", "openrouter"),
        ("PLATFORM_CAPABILITY_THRESHOLD", "1.5"),
    ],
)
def test_a_bad_platform_setting_refuses_to_start_naming_it(variable: str, value: str) -> None:
    result = load_settings({"DEBUG": "true", variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_the_database_password_can_come_from_a_file_apart_from_the_url(tmp_path: Path) -> None:
    password_file = tmp_path / "db_password"
    password_file.write_text("a-password-from-a-secret-file\n")
    result = load_settings(
        {
            "DEBUG": "true",
            "DATABASE_URL": "postgresql://registry@db.example:5432/registry",
            "DATABASE_PASSWORD_FILE": str(password_file),
        },
        "from django.conf import settings; db = settings.DATABASES['default']; print(db['USER'], db['PASSWORD'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "registry a-password-from-a-secret-file"
