"""WSGI application for bench/bench_read.py: the service's own URLs plus bare Django views of the same bytes.

``/bench/bare/<name>`` returns, with no authentication, cache or database, the very bytes the
registry returns for that read (files in ``BENCH_BODIES_DIR``), through the same server and
middleware: the difference to the registry's figure is the JWT check, the cache and the view.
With ``BENCH_NO_CACHE=1`` the cache is a dummy, so every read is a miss (the lean path).
Not a benchmark itself (the Makefile runs ``bench/bench_*.py``).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

BODIES_DIR = Path(os.environ["BENCH_BODIES_DIR"])
# Read once, on first use: the server starts before the benchmark has captured the registry's bodies.
BODIES: dict[str, bytes] = {}
if os.environ.get("BENCH_NO_CACHE"):
    # Before anything opens the cache (django.setup below does not): every lookup misses, nothing is stored.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
# Django first: the service's URLs import the admin, which needs the app registry.
django_application = get_wsgi_application()

# As registry_project.wsgi serves it: cache hits answered in front of Django.
from registry.api.fast_reads import CachedReads  # noqa: E402

application = CachedReads(django_application)
gc.freeze()  # as registry_project.wsgi does


def bare(request: HttpRequest, name: str) -> HttpResponse:
    body = BODIES.get(name)
    if body is None:
        body = BODIES[name] = (BODIES_DIR / f"{name}.json").read_bytes()
    return HttpResponse(body, content_type="application/json")


urlpatterns = [path("bench/bare/<str:name>", bare), path("", include("registry_project.urls"))]
settings.ROOT_URLCONF = __name__
