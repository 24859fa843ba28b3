"""``python -m registry_project.healthcheck web|beat``: the containers' health checks.

``web`` asks the web process's ``/health`` on 127.0.0.1 with a ``Host`` header that the operator's
``ALLOWED_HOSTS`` accepts, whatever it is set to (a probe sending ``localhost`` to a registry that
only answers ``registry.example.com`` would be refused with 400 and restart a healthy container).
It is healthy when ``/health`` answers 200 (``ok`` or ``degraded``: a Redis outage must not restart
the web containers).

``beat`` is healthy while its scheduler ticks: ``HeartbeatScheduler`` (registry_project/beat.py)
touches ``BEAT_HEARTBEAT_FILE`` after every tick, at most ``BEAT_MAX_LOOP_INTERVAL`` seconds apart;
the check fails when the file is older than ``BEAT_HEARTBEAT_MAX_AGE`` seconds.

Neither loads Django: a probe every few seconds should not cost an interpreter full of settings.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_HEARTBEAT_MAX_AGE = 60.0


def probe_host(allowed_hosts: str | None) -> str:
    """A Host header value that Django's ALLOWED_HOSTS check (same list syntax as settings) accepts."""
    for entry in (allowed_hosts or "").split(","):
        host = entry.strip()
        if not host or host == "*":
            continue
        # ".example.com" allows example.com and its subdomains.
        return host.lstrip(".")
    # Unset or only "*": the settings' default list, or anything, accepts localhost.
    return "localhost"


def heartbeat_file() -> Path:
    return Path(os.environ.get("BEAT_HEARTBEAT_FILE") or Path(tempfile.gettempdir()) / "model-registry-beat.heartbeat")


def check_web(timeout: float = 5.0) -> str | None:
    """None when healthy, else why not."""
    port = os.environ.get("PORT") or "8700"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health", headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS"))}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return None if response.status == 200 else f"/health answered {response.status}"
    except urllib.error.HTTPError as error:
        return f"/health answered {error.code}"
    except OSError as error:
        return f"/health did not answer: {error}"


def check_beat() -> str | None:
    max_age = float(os.environ.get("BEAT_HEARTBEAT_MAX_AGE") or DEFAULT_HEARTBEAT_MAX_AGE)
    path = heartbeat_file()
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return f"beat has not ticked yet ({path} is missing)"
    return None if age <= max_age else f"beat last ticked {age:.0f} s ago (more than {max_age:.0f} s)"


CHECKS = {"web": check_web, "beat": check_beat}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: python -m registry_project.healthcheck {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]]()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
