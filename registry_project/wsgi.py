"""WSGI entry point: ``registry_project.wsgi:application`` serves the API and the admin (registry_project.web).

Cache hits of model reads are answered by ``CachedReads`` in front of Django (registry/api/fast_reads.py).
"""

import gc
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

django_application = get_wsgi_application()

# Imported once Django is set up: the front uses the registry's models and settings.
from django.conf import settings  # noqa: E402

from registry.access.read_counts import read_counts_flush_every  # noqa: E402
from registry.api.fast_reads import CachedReads  # noqa: E402

# A served process writes its token-less read counts from a thread of its own (docs/platform.md).
read_counts_flush_every(settings.PLATFORM_READ_COUNTS_FLUSH_SECONDS)

# Where ``fronted`` keeps the path the server sent, for Django.
SERVER_PATH_KEY = "registry.server_path"


def fronted(django_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``django_app`` behind the cached-read front, seeing the PATH_INFO and SCRIPT_NAME the server sent.

    Django's ``WSGIRequest`` writes the path it decoded back into the environ (its ``META`` is the
    environ itself), and the front builds one to validate the Host. Django's own request then read
    that decoded path as the server's latin-1 one and raised for any character past U+00FF: an
    empty 500 from the server on the first such request of each worker (found by make fuzz, with
    ``/models/%F3%B7%B0%86``). Django is given the server's path back before it starts.
    """

    def django_with_the_servers_path(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sent = environ.get(SERVER_PATH_KEY)
        if sent is not None:
            environ["PATH_INFO"], environ["SCRIPT_NAME"] = sent
        return django_app(environ, start_response)

    front = CachedReads(django_with_the_servers_path)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[SERVER_PATH_KEY] = (environ.get("PATH_INFO", ""), environ.get("SCRIPT_NAME", ""))
        return front(environ, start_response)

    return application


application = fronted(django_application)

# Everything loaded so far lives as long as the process: keep it out of the cyclic collector's scans,
# which otherwise walk the whole of Django on every full collection during a request.
gc.freeze()
