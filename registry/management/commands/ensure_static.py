"""``manage.py ensure_static``: collect the static files when the manifest storage needs them.

With ``STATIC_MANIFEST`` on (the default when ``DEBUG`` is off) every ``{% static %}`` is looked up
in ``STATIC_ROOT/staticfiles.json``; a file missing from it makes the admin and the API docs answer
500. The image collects them at build time; a checkout started from source (``entrypoint.sh web``,
``DEBUG=false make run``) has no manifest, or one older than the sources after a pull. This runs
``collectstatic`` only then, so a start with everything collected costs a directory walk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage, staticfiles_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand


def stale_reason() -> str | None:
    """Why the collected files do not serve the sources, or None when they do (or no manifest is used)."""
    if not isinstance(staticfiles_storage, ManifestStaticFilesStorage):
        return None
    manifest = Path(settings.STATIC_ROOT) / staticfiles_storage.manifest_name
    if not manifest.is_file():
        return f"{manifest} is missing"
    try:
        collected = json.loads(manifest.read_text(encoding="utf-8")).get("paths", {})
    except (OSError, ValueError) as error:
        return f"{manifest} cannot be read ({error})"
    collected_at = manifest.stat().st_mtime
    for finder in finders.get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            if path not in collected:
                return f"{path} is not collected"
            if storage.path(path) and Path(storage.path(path)).stat().st_mtime > collected_at:
                return f"{path} changed since it was collected"
    return None


class Command(BaseCommand):
    help = "Run collectstatic when the static files manifest is missing or older than the sources."

    def handle(self, *args: Any, **options: Any) -> None:
        reason = stale_reason()
        if reason is None:
            self.stdout.write("static files: ready")
            return
        self.stdout.write(f"static files: collecting ({reason})")
        call_command("collectstatic", interactive=False, verbosity=0)
