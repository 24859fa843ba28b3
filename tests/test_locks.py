"""The dependency locks: each one is exactly what its source (``*.in``) resolves to.

A lock is stale when a requirement of its source, or of anything it pins, is missing from it or
pinned outside its range (the production worker once crashed on ``packaging``, which only
``kombu[redis]`` declares), or when it pins something nothing asks for any more. The walk reads
each pinned package's declared requirements from the installed distribution, so it runs offline;
the environment running the tests is installed from these same locks (``make install-dev``), and a
package installed at another version than its pin fails the test too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


@dataclass(frozen=True)
class Lock:
    source: Path
    lock: Path
    # Locks whose pins this one may rely on (the dev lock is installed on top of the production lock).
    beside: tuple[Path, ...] = ()


LOCKS = [
    Lock(ROOT / "requirements.in", ROOT / "requirements.txt"),
    Lock(ROOT / "requirements-dev.in", ROOT / "requirements-dev.txt", beside=(ROOT / "requirements.txt",)),
]


def pins(lock: Path) -> dict[str, Version]:
    found = {}
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match.group(1))] = Version(match.group(2))
    return found


def hashed(lock: Path) -> bool:
    """Every pin carries at least one --hash (pip's --require-hashes needs all of them)."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n\n", 1)[-1])
    return all("--hash=sha256:" in block for block in blocks if PIN.match(block))


def source_requirements(source: Path) -> list[Requirement]:
    requirements = []
    for raw in source.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""})


def resolution_problems(lock: Lock) -> list[str]:
    """What is wrong with ``lock`` against its source: missing, out-of-range, uninstalled or unused pins."""
    pinned = pins(lock.lock)
    available = dict(pinned)
    for other in lock.beside:
        available.update(pins(other))
    problems = []
    reached: set[str] = set()
    pending = [(requirement, "the source") for requirement in source_requirements(lock.source)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, wanted_by = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        version = available.get(name)
        if version is None:
            problems.append(f"{requirement} (wanted by {wanted_by}) is not pinned")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{name}=={version} does not satisfy {requirement} (wanted by {wanted_by})")
        reached.add(name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is pinned but not installed here: install from the locks (make install-dev)")
            continue
        if Version(installed.version) != version:
            problems.append(
                f"{name} is installed at {installed.version}, pinned at {version}: reinstall (make install-dev)"
            )
            continue
        for declared in installed.requires or []:
            dependency = Requirement(declared)
            if applies(dependency, extras):
                pending.append((dependency, f"{name}{sorted(extras) if extras else ''}"))
    unused = sorted(set(pinned) - reached)
    problems += [f"{name} is pinned but nothing in {lock.source.name} needs it" for name in unused]
    return problems


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.lock.name)
def test_lock_is_what_its_source_resolves_to(lock: Lock) -> None:
    problems = resolution_problems(lock)
    assert not problems, f"{lock.lock.name} is stale; run `make lock`:\n" + "\n".join(problems)


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.lock.name)
def test_every_pin_has_hashes(lock: Lock) -> None:
    assert pins(lock.lock)
    assert hashed(lock.lock)


def test_a_lock_missing_an_extras_dependency_is_stale(tmp_path: Path) -> None:
    """The defect that let the worker crash in production: kombu pinned without its [redis] extra's packaging."""
    stale = tmp_path / "requirements.txt"
    text = (ROOT / "requirements.txt").read_text()
    stale.write_text(re.sub(r"\npackaging==[^\n]*(\n    [^\n]*)*", "", text))
    assert "packaging==" not in stale.read_text()
    problems = resolution_problems(Lock(ROOT / "requirements.in", stale))
    assert any(problem.startswith("packaging") and "not pinned" in problem for problem in problems), problems


def test_a_pin_nothing_needs_is_stale(tmp_path: Path) -> None:
    source = tmp_path / "requirements.in"
    lines = (ROOT / "requirements.in").read_text().splitlines()
    source.write_text("\n".join(line for line in lines if "granian" not in line))
    problems = resolution_problems(Lock(source, ROOT / "requirements.txt"))
    assert "granian is pinned but nothing in requirements.in needs it" in problems
