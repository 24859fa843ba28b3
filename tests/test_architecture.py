"""The import contract of docs/architecture.md, read from the code with ``ast`` (runs in ``make check``).

- Imports only run down: the domain (``registry.catalog``, ``telemetry``, ``selection``, ``reads``,
  ``access``, ``operations``, ``registry.models`` and discovery's domain modules) never imports an
  entry point (the API, the console, tasks, management commands, the project's settings and URLs),
  not even inside a function.
- Each domain package of ``registry/`` imports only the packages its docstring names (``ALLOWED``).
- The API never imports the console (the console may use the API's serializers to validate forms).
- No cycle among module-level imports: a cycle would make the import order matter.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "discovery", "registry_project")

DOMAIN_PACKAGES = {
    "registry.catalog",
    "registry.telemetry",
    "registry.selection",
    "registry.reads",
    "registry.access",
    "registry.operations",
}
DOMAIN_MODULES = {"registry.models"}
DISCOVERY_DOMAIN = {
    "discovery.models",
    "discovery.services",
    "discovery.sync",
    "discovery.clients",
    "discovery.catalogs",
    "discovery.runtime",
    "discovery.schedules",
    "discovery.selectors",
    "discovery.locks",
}
ENTRY_POINTS = (
    "registry.api",
    "registry.console",
    "registry.admin",
    "registry.tasks",
    "registry.management",
    "discovery.api",
    "discovery.admin",
    "discovery.tasks",
    "discovery.management",
    "registry_project",
)

# Shared by every layer: the environment's readers, which settings use too; model_usage's daily
# partitions, the storage below the models (their queryset creates the day a record needs).
UTILITIES = ("registry_project.env", "registry.partitions")

# What each domain package of registry/ may import besides itself (its docstring says the same).
ALLOWED: dict[str, set[str]] = {
    "registry.models": set(),
    "registry.access": {"registry.models", "registry.catalog"},
    "registry.catalog": {
        "registry.models",
        "registry.access",
        "registry.reads",
        "registry.telemetry",
        "registry.operations",
    },
    "registry.telemetry": {
        "registry.models",
        "registry.catalog",
        "registry.access",
        "registry.reads",
        "registry.operations",
        "discovery.models",
    },
    "registry.selection": {
        "registry.models",
        "registry.catalog",
        "registry.telemetry",
        "registry.reads",
        "registry.operations",
    },
    "registry.reads": {"registry.models", "registry.catalog", "registry.selection", "registry.operations"},
    "registry.operations": {"registry.models", "registry.reads", "registry.access", "discovery.models"},
}


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module
    imported: str  # the module (or package) imported
    line: int
    top_level: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path, root)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield Import(name, full if full in known else node.module, node.lineno, id(node) in top)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, id(node) in top)


def all_imports(root: Path = ROOT) -> list[Import]:
    found = modules(root)
    known = set(found)
    return [
        found_import
        for name, path in found.items()
        for found_import in imports_of(name, path, known)
        if found_import.imported.split(".")[0] in PACKAGES
    ]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    """The domain package or module ``module`` belongs to, if it is domain code."""
    for package in (*DOMAIN_PACKAGES, *DOMAIN_MODULES, *DISCOVERY_DOMAIN):
        if within(module, package):
            return package
    return None


def wrong_way(imports: list[Import]) -> list[str]:
    problems = []
    for found in imports:
        layer = layer_of(found.importer)
        if layer is None or any(within(found.imported, shared) for shared in UTILITIES):
            continue
        if any(within(found.imported, entry) for entry in ENTRY_POINTS):
            problems.append(f"{found.importer}:{found.line} imports the entry point {found.imported}")
        elif layer in ALLOWED and not within(found.imported, layer):
            target = layer_of(found.imported) or found.imported
            if target not in ALLOWED[layer] and not any(within(found.imported, p) for p in ALLOWED[layer]):
                problems.append(f"{found.importer}:{found.line} imports {found.imported}, not allowed for {layer}")
    return sorted(problems)


def api_into_console(imports: list[Import]) -> list[str]:
    return [
        f"{found.importer}:{found.line} imports {found.imported}"
        for found in imports
        if within(found.importer, "registry.api") and within(found.imported, "registry.console")
    ]


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module among module-level imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for found in imports:
        if found.top_level and found.imported != found.importer:
            graph[found.importer].add(found.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return components


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_the_domain_never_imports_an_entry_point_or_a_package_it_does_not_declare(imports: list[Import]) -> None:
    assert wrong_way(imports) == []


def test_what_every_layer_shares_imports_nothing_of_the_project(imports: list[Import]) -> None:
    assert [f"{i.importer}:{i.line} imports {i.imported}" for i in imports if i.importer in UTILITIES] == []


def test_the_api_never_imports_the_console(imports: list[Import]) -> None:
    assert api_into_console(imports) == []


def test_module_level_imports_have_no_cycle(imports: list[Import]) -> None:
    assert cycles(imports) == []


def test_every_package_of_registry_says_what_it_owns_and_may_import() -> None:
    for package in sorted(DOMAIN_PACKAGES):
        docstring = ast.get_docstring(ast.parse((ROOT / Path(*package.split(".")) / "__init__.py").read_text()))
        assert docstring, package
        assert "May import" in docstring, package


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)


def test_the_checks_catch_an_upward_import_an_undeclared_one_and_a_cycle(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "registry/__init__.py": "",
            "registry/catalog/__init__.py": "",
            "registry/catalog/services.py": "def f():\n    from registry.api.views import X\n",
            "registry/access/__init__.py": "",
            "registry/access/roles.py": "from registry.selection.ranking import Y\n",
            "registry/selection/__init__.py": "",
            "registry/selection/ranking.py": "from registry.reads.cache import Z\n",
            "registry/reads/__init__.py": "",
            "registry/reads/cache.py": "from registry.selection.ranking import Y\n",
            "registry/api/__init__.py": "",
            "registry/api/views.py": "from registry.console.site import S\n",
            "registry/console/__init__.py": "",
            "registry/console/site.py": "",
        },
    )
    found = all_imports(tmp_path)
    assert wrong_way(found) == [
        "registry.access.roles:1 imports registry.selection.ranking, not allowed for registry.access",
        "registry.catalog.services:2 imports the entry point registry.api.views",
    ]
    assert api_into_console(found) == ["registry.api.views:1 imports registry.console.site"]
    assert cycles(found) == [["registry.reads.cache", "registry.selection.ranking"]]
