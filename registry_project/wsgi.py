"""WSGI entry point: ``registry_project.wsgi:application`` serves the API and the admin (registry_project.web).

Cache hits of model reads are answered by ``CachedReads`` in front of Django (registry/api/fast_reads.py).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

from registry_project import accesslog

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

django_application = get_wsgi_application()

# Imported once Django is set up: the front uses the registry's models and settings.
from registry.api.fast_reads import CachedReads  # noqa: E402

application = CachedReads(django_application)

# In each worker, which is where granian writes its access log.
accesslog.install()

# Everything loaded so far lives as long as the process: keep it out of the cyclic collector's scans,
# which otherwise walk the whole of Django on every full collection during a request.
gc.freeze()
