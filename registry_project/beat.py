"""Celery beat's scheduler: django-celery-beat's database scheduler, with a heartbeat.

Beat serves nothing a probe could ask, so it proves it is alive by touching a file after every
tick (``registry_project/healthcheck.py beat`` reads its age). A tick that fails (the database
gone) leaves the file alone, and the container turns unhealthy.
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from registry_project.healthcheck import heartbeat_file


class HeartbeatScheduler(DatabaseScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        path = heartbeat_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return interval
