"""WSGI application for bench/bench_ops.py: the service's own URLs plus a bare Django view.

The bare view returns, with no authentication, cache or database, the very bytes that
``GET /models/{name}`` returns, so that the two measure the same response size on the same
server: the difference is the JWT check and the cache hit. Not a benchmark itself (the Makefile
runs ``bench/bench_*.py``); bench_ops.py starts a server on this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

BODY = Path(os.environ["BENCH_BARE_BODY_FILE"]).read_bytes()
# Django first: the service's URLs import the admin, which needs the app registry.
application = get_wsgi_application()


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("bench/bare", bare), path("", include("registry_project.urls"))]
settings.ROOT_URLCONF = __name__
