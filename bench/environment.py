"""The environment a benchmark starts Django in, set before Django is imported.

Every ``bench/bench_*.py`` runs as a script (so this folder is on ``sys.path``) and calls
``configure`` first: the bench's own PostgreSQL (``BENCH_DATABASE_URL``), throwaway secrets, its
log level, and the repository root on ``sys.path`` for the project's packages.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/registry_bench"


def configure(*, log_level: str) -> str:
    """Point Django at the bench database; the URL it uses."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
    os.environ.setdefault("JWT_SECRET", "bench-jwt-secret-not-for-production-0123456789")
    os.environ.setdefault("LOG_LEVEL", log_level)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    return database_url


def use_bench_redis_only() -> None:
    """Never the caller's Redis (it may be another service's database): the bench's own, or the file cache."""
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    else:
        os.environ.pop("REDIS_URL", None)
