"""Fixtures shared by the whole suite."""

from __future__ import annotations

import socket

import pytest
from django.core.cache import cache
from django.db import connection


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache, whichever backend the environment configured."""
    cache.clear()
