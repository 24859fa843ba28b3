"""The container artifacts: the compose file's shape, the Dockerfile's rules, and the entrypoint's steps
run outside Docker (there is no engine on these machines) against the test PostgreSQL."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from django.conf import settings
from django.db import connections
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
REGISTRY_SERVICES = ["model-registry", "worker", "beat"]


class TestCompose:
    def test_services_are_the_designs(self) -> None:
        assert set(SERVICES) == {"model-registry", "worker", "beat", "db-postgres", "redis", "llm-service"}

    def test_registry_serves_on_8700_from_the_image(self) -> None:
        registry = SERVICES["model-registry"]
        assert registry["ports"] == ["8700:8700"]
        assert registry["image"] == f"alfred-model-registry:{settings.VERSION}"
        assert registry["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert registry["restart"] == "unless-stopped"

    def test_worker_and_beat_run_the_same_image_with_another_command(self) -> None:
        assert SERVICES["worker"]["image"] == SERVICES["model-registry"]["image"]
        assert SERVICES["beat"]["image"] == SERVICES["model-registry"]["image"]
        assert [SERVICES[name]["command"] for name in REGISTRY_SERVICES] == [["web"], ["worker"], ["beat"]]

    def test_platform_variable_names_are_mapped_to_the_services(self) -> None:
        env = SERVICES["model-registry"]["environment"]
        assert env["DATABASE_URL"] == (
            "${ALFRED_DATABASE_URL:-postgresql://${DB_USER:-postgres}@db-postgres:5432/${DB_NAME:-postgres}}"
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["LOG_LEVEL"] == "info"
        assert env["OLLAMA_URL"] == "${OLLAMA_URL:-}"
        assert env["OPENAI_API_KEY"] == "${ALFRED_OPENAI_API_KEY:-}"
        assert env["ANTHROPIC_API_KEY"] == "${ALFRED_ANTHROPIC_API_KEY:-}"

    def test_secrets_are_compose_secrets_read_through_their_files(self) -> None:
        expected = {
            "SECRET_KEY_FILE": "/run/secrets/secret-key",
            "JWT_SECRET_FILE": "/run/secrets/jwt-secret",
            "DATABASE_PASSWORD_FILE": "/run/secrets/db-password",
        }
        for name in REGISTRY_SERVICES:
            service = SERVICES[name]
            assert sorted(service["secrets"]) == ["db-password", "jwt-secret", "secret-key"], name
            assert {key: service["environment"][key] for key in expected} == expected, name
            for secret in ("SECRET_KEY", "JWT_SECRET", "DATABASE_PASSWORD"):
                assert secret not in service["environment"], (name, secret)
        database = SERVICES["db-postgres"]
        assert database["secrets"] == ["db-password"]
        assert database["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-password"
        assert "POSTGRES_PASSWORD" not in database["environment"]

    def test_compose_refuses_to_start_without_the_secrets_and_has_no_default_one(self) -> None:
        # `${VAR:?message}`: compose stops with the message when the variable is unset or empty.
        required = {
            name: re.fullmatch(r"\$\{([A-Z_]+):\?(.+)\}", secret["file"]) for name, secret in COMPOSE["secrets"].items()
        }
        assert {name: match.group(1) for name, match in required.items() if match} == {
            "secret-key": "MODEL_REGISTRY_SECRET_KEY_FILE",
            "jwt-secret": "DB_JWT_SECRET_FILE",
            "db-password": "DB_PASSWORD_FILE",
        }
        text = (ROOT / "docker-compose.yml").read_text()
        assert "your-super-secret" not in text
        # No variable that holds a secret is given a default value.
        assert re.search(r"\$\{[A-Z_]*(SECRET|PASSWORD|KEY|TOKEN)[A-Z_]*:-[^}]", text) is None

    def test_only_the_registrys_port_is_published(self) -> None:
        published = {name: service["ports"] for name, service in SERVICES.items() if "ports" in service}
        assert published == {"model-registry": ["8700:8700"]}

    def test_every_image_is_pinned_to_a_version(self) -> None:
        for name, service in SERVICES.items():
            image = service["image"]
            repository, _, tag = image.rpartition(":")
            assert repository, (name, image)
            assert re.fullmatch(r"\d+(\.\d+)+", tag), (name, image)

    def test_web_and_worker_outlast_their_graceful_stop(self) -> None:
        graceful = 20  # registry_project/web.py: WEB_GRACEFUL_TIMEOUT's default
        for name in ("model-registry", "worker"):
            period = SERVICES[name]["stop_grace_period"]
            assert int(period.removesuffix("s")) > graceful, name

    def test_no_fixed_container_names_that_could_collide_with_the_platforms(self) -> None:
        assert all("container_name" not in service for service in SERVICES.values())

    def test_a_plain_up_registers_no_source_for_the_profile_only_ollama(self) -> None:
        # OLLAMA_URL empty unless set: a plain `up` has no llm-service, so no source may point at it.
        for name in REGISTRY_SERVICES:
            assert SERVICES[name]["environment"]["OLLAMA_URL"] == "${OLLAMA_URL:-}"

    def test_every_variable_given_to_the_service_is_one_it_reads(self) -> None:
        readers = [
            "registry_project/settings.py",
            "registry/access/accounts.py",
            "registry_project/web.py",
            "docker/entrypoint.sh",
        ]
        text = "".join((ROOT / path).read_text() for path in readers)
        pattern = r"""env_\w+\(\s*"([A-Z_]+)"|environ\.get\("([A-Z_]+)"|\$\{([A-Z_]+):-"""
        names = {name for groups in re.findall(pattern, text) for name in groups if name}
        for service in REGISTRY_SERVICES:
            # NAME_FILE is read by every env_str reader of NAME (registry_project/env.py).
            given = {name.removesuffix("_FILE") for name in SERVICES[service]["environment"]}
            assert given - names == set(), service

    def test_the_registry_waits_for_a_healthy_database_and_a_started_redis(self) -> None:
        assert SERVICES["model-registry"]["depends_on"] == {
            "db-postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }

    def test_worker_and_beat_wait_for_the_migrated_registry(self) -> None:
        for name in ("worker", "beat"):
            assert SERVICES[name]["depends_on"]["model-registry"] == {"condition": "service_healthy"}
            assert SERVICES[name]["depends_on"]["redis"] == {"condition": "service_healthy"}

    def test_registry_healthcheck_probes_health(self) -> None:
        assert SERVICES["model-registry"]["healthcheck"] == {
            "test": ["CMD", "python", "-m", "registry_project.healthcheck", "web"],
            "interval": "30s",
            "timeout": "10s",
            "retries": 3,
            "start_period": "30s",
        }

    def test_beat_has_a_health_check_of_its_own(self) -> None:
        probe = ["CMD", "python", "-m", "registry_project.healthcheck", "beat"]
        assert SERVICES["beat"]["healthcheck"]["test"] == probe

    def test_dependencies_have_healthchecks(self) -> None:
        assert "pg_isready" in " ".join(SERVICES["db-postgres"]["healthcheck"]["test"])
        assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        assert "inspect ping" in " ".join(SERVICES["worker"]["healthcheck"]["test"])

    def test_every_service_is_on_the_alfred_network(self) -> None:
        assert COMPOSE["networks"]["alfred-network"]["name"] == "alfred-network"
        for name, service in SERVICES.items():
            assert service["networks"] == ["alfred-network"], name

    def test_only_the_platforms_containers_are_a_trusted_network(self) -> None:
        environment = SERVICES["model-registry"]["environment"]
        (plan,) = COMPOSE["networks"]["alfred-network"]["ipam"]["config"]
        assert environment["PLATFORM_TRUSTED_NETWORKS"] == f"${{MODEL_REGISTRY_TRUSTED_NETWORKS:-{plan['ip_range']}}}"
        containers = ipaddress.ip_network(plan["ip_range"])
        assert containers.subnet_of(ipaddress.ip_network(plan["subnet"]))
        # Published-port traffic comes in from the gateway: it must not be trusted.
        assert ipaddress.ip_address(plan["gateway"]) not in containers
        assert environment["PLATFORM_API_COMPAT"] == "${MODEL_REGISTRY_PLATFORM_API_COMPAT:-alfred}"
        for name in ("worker", "beat"):
            assert "PLATFORM_TRUSTED_NETWORKS" not in SERVICES[name]["environment"], name

    def test_ollama_is_an_optional_profile(self) -> None:
        assert SERVICES["llm-service"]["profiles"] == ["ollama"]
        assert SERVICES["llm-service"]["image"].startswith("ollama/ollama")
        assert all("profiles" not in SERVICES[name] for name in SERVICES if name != "llm-service")

    def test_registry_labels_are_the_designs(self) -> None:
        assert SERVICES["model-registry"]["labels"] == {
            "com.docker.compose.project": "alfred",
            "com.docker.compose.group": "core-infrastructure",
            "com.docker.compose.service": "model-registry",
        }

    def test_redis_never_evicts_the_broker_queues(self) -> None:
        command = SERVICES["redis"]["command"]
        assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"

    def test_redis_keeps_the_queues_and_the_usage_buffer_across_a_restart(self) -> None:
        # The usage buffer answers posts as kept while PostgreSQL is away: only an append-only file makes it so.
        command = SERVICES["redis"]["command"]
        assert command[command.index("--appendonly") + 1] == "yes"
        assert command[command.index("--appendfsync") + 1] == "everysec"


DOCKERFILE = (ROOT / "Dockerfile").read_text()


class TestDockerfile:
    def test_base_is_slim_python_3_11_pinned(self) -> None:
        assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", DOCKERFILE, re.MULTILINE)

    def test_runs_as_a_non_root_user(self) -> None:
        users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
        assert users == ["registry"]
        assert "useradd --system --uid 10001" in DOCKERFILE

    def test_dependencies_are_installed_before_the_code_is_copied(self) -> None:
        install = DOCKERFILE.index("pip install --require-hashes -r requirements.txt")
        assert DOCKERFILE.index("COPY requirements.txt .") < install < DOCKERFILE.index("COPY . .")

    def test_static_files_are_collected(self) -> None:
        assert "manage.py collectstatic --noinput" in DOCKERFILE

    def test_healthcheck_probes_health_and_the_entrypoint_starts_the_web(self) -> None:
        probe = 'CMD ["python", "-m", "registry_project.healthcheck", "web"]'
        assert re.search(r"HEALTHCHECK .*\n\s+" + re.escape(probe), DOCKERFILE)
        assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in DOCKERFILE
        assert 'CMD ["web"]' in DOCKERFILE
        assert "EXPOSE 8700" in DOCKERFILE

    def test_the_build_context_leaves_out_local_state(self) -> None:
        ignored = (ROOT / ".dockerignore").read_text().split()
        assert {".git", ".venv", "data", "staticfiles", "tests"} <= set(ignored)


@pytest.fixture
def entrypoint_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "OLLAMA_URL", "OPENAI_API_KEY"}
        and k not in {"ANTHROPIC_API_KEY", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "DJANGO_SUPERUSER_USERNAME": "operator",
            "DJANGO_SUPERUSER_PASSWORD": "a-long-operator-password",
            "DB_WAIT_SECONDS": "5",
        }
    )
    return env


def test_entrypoint_gives_up_when_the_database_never_answers(entrypoint_env: dict[str, str], free_port: int) -> None:
    entrypoint_env.update(
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port}/registry", "DB_WAIT_SECONDS": "1"}
    )

    result = subprocess.run(
        ["sh", "docker/entrypoint.sh", "prepare"], cwd=ROOT, env=entrypoint_env, capture_output=True, timeout=60
    )

    assert result.returncode == 1
    assert b"the database did not answer within 1 s" in result.stderr


@pytest.fixture
def fresh_schema(db: None, entrypoint_env: dict[str, str]) -> Iterator[str]:
    """A new, empty schema in the test database, named for the entrypoint to create; dropped after."""
    settings_dict = connections["default"].settings_dict
    if connections["default"].vendor != "postgresql":
        pytest.skip("the entrypoint targets PostgreSQL")
    user, host, port = settings_dict["USER"], settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    url = f"postgresql://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
    schema = f"entrypoint_{uuid.uuid4().hex[:12]}"
    entrypoint_env.update({"DATABASE_URL": url, "DB_SCHEMA": schema})
    yield schema
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def tables_in(schema: str, env: dict[str, str]) -> set[str]:
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in rows}


@pytest.mark.postgres
@pytest.mark.slow
def test_entrypoint_prepare_creates_the_schema_migrates_and_is_idempotent(
    fresh_schema: str, entrypoint_env: dict[str, str]
) -> None:
    first = subprocess.run(
        ["sh", "docker/entrypoint.sh", "prepare"], cwd=ROOT, env=entrypoint_env, capture_output=True, timeout=180
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    output = first.stdout.decode()
    assert "the database answers" in output
    assert "Applying registry.0001_initial... OK" in output
    assert "Created admin user 'operator'." in output
    assert "schedule 'registry: alert checks'" in output
    assert {"models", "model_endpoints", "alerts", "provider_sources", "django_celery_beat_periodictask"} <= tables_in(
        fresh_schema, entrypoint_env
    )

    second = subprocess.run(
        ["sh", "docker/entrypoint.sh", "prepare"], cwd=ROOT, env=entrypoint_env, capture_output=True, timeout=180
    )
    assert second.returncode == 0
    assert "No migrations to apply." in second.stdout.decode()
    assert "Admin user 'operator' exists." in second.stdout.decode()


@pytest.mark.postgres
@pytest.mark.slow
def test_entrypoint_web_serves_health_and_stops_on_sigterm(
    fresh_schema: str, entrypoint_env: dict[str, str], free_port: int, tmp_path: Path
) -> None:
    entrypoint_env.update({"PORT": str(free_port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"})
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        ["sh", "docker/entrypoint.sh", "web"], cwd=ROOT, env=entrypoint_env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        response = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = requests.get(f"http://127.0.0.1:{free_port}/health", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.3)
        assert response is not None, (tmp_path / "web.log").read_text()[-2000:]
        assert response.status_code == 200
        assert response.json()["services"]["database"] == "ok"
    finally:
        # exec: the shell became granian, so SIGTERM reaches its main process directly.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    assert process.returncode == 0
