"""The documentation says what the service does: required fields as the schema has them, every
environment variable the code reads, commands that run as written."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from registry_project import env

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
# Where the service's code reads its environment (tests, bench and the image's scripts are not the service).
SERVICE_PACKAGES = ("registry_project", "registry", "discovery")
# registry_project/env.py: each reads the variable named by its first argument.
# Every reader of registry_project/env.py (env_str, env_int, env_secret, ...).
ENV_READERS = {name for name in vars(env) if name.startswith("env_") and callable(getattr(env, name))}


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def test_api_doc_names_the_fields_a_model_create_requires(openapi: dict[str, Any]) -> None:
    stated = re.search(r"\*\*Required on create\*\*[^:]*:(.*?)\.", API_DOC.read_text(), re.DOTALL)

    assert stated is not None, "docs/api.md does not say which fields a model requires on create"
    assert backticked(stated.group(1)) == set(openapi["components"]["schemas"]["RegisteredModelRequest"]["required"])


def test_api_doc_names_the_field_an_endpoint_requires(openapi: dict[str, Any]) -> None:
    stated = re.search(r"An endpoint, [^.]*?\s+requires\s+`([^`]+)`", API_DOC.read_text(), re.DOTALL)

    assert stated is not None, "docs/api.md does not say which fields an endpoint requires"
    assert [stated.group(1)] == openapi["components"]["schemas"]["EndpointRequest"]["required"]


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _reads_its_first_argument(call: ast.Call) -> bool:
    """``env_*(NAME, ...)``, ``os.environ.get(NAME)``, ``os.getenv(NAME)``."""
    function = call.func
    if isinstance(function, ast.Name):
        return function.id in ENV_READERS
    if isinstance(function, ast.Attribute):
        return (function.attr == "get" and _is_os_environ(function.value)) or (
            function.attr == "getenv" and isinstance(function.value, ast.Name) and function.value.id == "os"
        )
    return False


def variables_read(source: str) -> Iterator[str]:
    """The environment variables a module reads: ``env_*("NAME", ...)``, ``os.environ.get("NAME")``,
    ``os.environ["NAME"]``, ``os.getenv("NAME")``; a name may be a module-level string constant."""
    tree = ast.parse(source)
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }

    def name_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    for node in ast.walk(tree):
        named: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args and _reads_its_first_argument(node):
            named = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_os_environ(node.value):
            named = node.slice
        name = name_of(named) if named is not None else None
        if name:
            yield name


def service_variables() -> dict[str, set[str]]:
    """Each variable the service reads, with the files that read it."""
    found: dict[str, set[str]] = {}
    for package in SERVICE_PACKAGES:
        for module in sorted((ROOT / package).rglob("*.py")):
            for name in variables_read(module.read_text()):
                found.setdefault(name, set()).add(str(module.relative_to(ROOT)))
    return found


def test_the_collector_finds_each_way_of_reading_the_environment() -> None:
    source = """
import os
from registry_project.env import env_int
NAMED = "FROM_A_CONSTANT"
env_int("BY_HELPER", 1)
os.environ.get("BY_GET")
os.environ["BY_INDEX"]
os.getenv("BY_GETENV")
os.environ.get(NAMED)
os.environ["SET_ONLY"] = "1"
"""
    assert set(variables_read(source)) == {"BY_HELPER", "BY_GET", "BY_INDEX", "BY_GETENV", "FROM_A_CONSTANT"}


def test_every_environment_variable_the_service_reads_is_documented() -> None:
    read = service_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "WEB_CONCURRENCY", "RUNALL_READY_DIR"} <= set(read)
    documents = "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])

    undocumented = {
        name: sorted(files)
        for name, files in read.items()
        if not re.search(rf"(?<![A-Z0-9_]){re.escape(name)}(?![A-Z0-9_])", documents)
    }

    assert undocumented == {}, "read by the service but named in neither README.md nor docs/*.md"


def test_manage_py_commands_in_the_docs_run_with_the_checkouts_python() -> None:
    # A bare `python manage.py ...` runs whichever python is first on PATH, without the service's
    # dependencies; in the container (`docker compose run ...`) python is the image's, which has them.
    bare = [
        f"{page.name}: {line.strip()}"
        for page in sorted((ROOT / "docs").glob("*.md"))
        for line in page.read_text().splitlines()
        if re.search(r"(?<![\w/.])python manage\.py", line) and "docker compose" not in line
    ]

    assert bare == []
