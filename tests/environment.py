"""Loaded by pytest before Django (``-p tests.environment``): the test environment, visibly.

Only what tests need and production must never default: the secrets. Everything else (database,
cache, broker) comes from the environment the suite runs in, so CI runs the same tests on
PostgreSQL + Redis and on the embedded defaults.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("JWT_SECRET", "test-jwt-secret-not-for-production-0123456789abcdef")
os.environ.setdefault("LOG_FORMAT", "text")
