"""The web server's access log without static files and liveness probes.

One admin page pulls a dozen CSS, JS and image files through whitenoise, and an orchestrator asks
``/healthz`` every few seconds; logged, they bury the requests an operator reads the log for.
granian logs each request through the ``granian.access`` logger of the worker process, with the
request's fields as the record's mapping argument; this filter drops those two kinds and lets
every other request through (``/health``, the readiness check, stays). granian attaches it to that
logger in its workers, from the server's logging configuration (registry_project/server_logging.json).
"""

from __future__ import annotations

import logging

# settings.STATIC_URL; kept literal so that the filter needs no Django settings.
STATIC_PREFIX = "/static/"
LIVENESS_PATH = "/healthz"


class WithoutStaticFilesOrProbes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.args
        path = fields.get("path", "") if isinstance(fields, dict) else ""
        return not (str(path).startswith(STATIC_PREFIX) or path == LIVENESS_PATH)
