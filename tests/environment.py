"""Loaded by pytest before Django (``-p tests.environment``): the test environment, visibly.

Only what tests need and production must never default: the secrets, and a fast password hasher.
Everything else (database, cache, broker) comes from the environment the suite runs in, so CI runs
the same tests on PostgreSQL + Redis and on the embedded defaults.
"""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("JWT_SECRET", "test-jwt-secret-not-for-production-0123456789abcdef")
os.environ.setdefault("LOG_FORMAT", "text")


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher() -> Iterator[None]:
    """MD5 instead of PBKDF2 in this process: a password set or checked costs microseconds, not 0.3 s.

    The production hasher is slow on purpose; hundreds of test users (factories, admin_user, the
    console's logins) paid it for nothing. Processes a test starts (``make run``, the smoke test)
    keep the production hasher.
    """
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield
