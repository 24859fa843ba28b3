"""The production web server on PostgreSQL and Redis, prepared for ``make fuzz`` and ``make load``.

A database of its own (LOAD_DATABASE_URL, default ``registry_load``; dropped and created anew), a
Redis database of its own (LOAD_REDIS_URL, default DB 14), one user per role with an access token,
one model to find, then the web command ``make run`` uses (registry_project.runall) on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry_project import runall  # noqa: E402

DATABASE_URL = os.environ.get("LOAD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/registry_load")
REDIS_URL = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/14")

SEED = """
import json
from django.contrib.auth.models import Group
from django.core.cache import cache
from rest_framework_simplejwt.tokens import AccessToken
from registry.models import ModelCapability, ModelEndpoint, RegisteredModel
from django.contrib.auth import get_user_model

cache.clear()
tokens = {}
for role in ("viewer", "service", "editor", "admin"):
    user, _ = get_user_model().objects.get_or_create(username=f"load-{role}")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    tokens[role] = str(AccessToken.for_user(user))
for n in range(20):
    model = RegisteredModel.objects.create(
        name=f"load-model-{n}:latest", display_name=f"Load model {n}", provider="ollama", model_type="chat"
    )
    ModelCapability.objects.create(model=model, capability="code", capability_score=0.5 + n / 50)
    ModelEndpoint.objects.create(model=model, endpoint_type="local", endpoint_url="http://gpu-1:11434/api/chat")
print("TOKENS=" + json.dumps(tokens))
"""


@dataclass
class LiveServer:
    url: str
    tokens: dict[str, str]
    env: dict[str, str]


def server_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PROMETHEUS_MULTIPROC_DIR", "CELERY_BROKER_URL"}}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        SECRET_KEY="load-secret-key-not-for-production-0123456789abcdef",
        JWT_SECRET="load-jwt-secret-not-for-production-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        JWT_ACCESS_TOKEN_MINUTES="240",
        LOG_LEVEL="error",
        WEB_ACCESS_LOG="false",
        WEB_CONCURRENCY=os.environ.get("WEB_CONCURRENCY", "2"),
        PORT=str(port),
    )
    return env


def recreate_database() -> None:
    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def live_server() -> Iterator[LiveServer]:
    port = free_port()
    env = server_env(port)
    recreate_database()
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    tokens = json.loads(seeded.stdout.split("TOKENS=", 1)[1])
    command = runall.children(host="127.0.0.1", port=str(port), sqlite=False)[0].command
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,  # noqa: S310 (loopback)
            ):
                if response.status == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("the web server did not start")
        yield LiveServer(url=url, tokens=tokens, env=env)
    finally:
        process.terminate()
        process.wait(timeout=30)


def schema_file(env: dict[str, str], path: Path) -> Path:
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--file", str(path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return path
