"""The Celery app shared by the worker, beat and the web process (which only enqueues)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

app = Celery("registry_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
