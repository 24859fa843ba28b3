"""gunicorn's access log without static files (``logger_class`` in gunicorn.conf.py).

One admin page pulls a dozen CSS, JS and image files through whitenoise; logged, they bury the
requests an operator reads the log for. Every other request is logged as gunicorn always does.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

# settings.STATIC_URL (gunicorn's master process does not load the Django settings).
STATIC_PREFIX = "/static/"


class AccessLogWithoutStatic(Logger):
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if str(environ.get("PATH_INFO", "")).startswith(STATIC_PREFIX):
            return
        super().access(resp, req, environ, request_time)
