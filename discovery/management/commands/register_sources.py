"""Create or update the provider sources named by the environment; optionally queue a first discovery."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from discovery.selectors import sources_enabled
from discovery.services import sources_register_from_environment
from discovery.tasks import discovery_enqueue
from registry.access.audit import system_actor


class Command(BaseCommand):
    help = (
        "Register the sources named by OLLAMA_URL, OPENAI_API_KEY and ANTHROPIC_API_KEY (and their beat "
        "schedules). With --discover, queue a discovery of every enabled source and return at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--discover",
            action="store_true",
            help="Queue a first discovery of every enabled source (skipped when DISCOVERY_ON_STARTUP is false).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with system_actor("command:register_sources"), transaction.atomic():
            results = sources_register_from_environment()
            for result in results:
                what = "created" if result.created else ("updated" if result.changed else "unchanged")
                self.stdout.write(f"source {result.source.name} ({result.source.kind}): {what}")
            if not results:
                self.stdout.write("no provider source named by the environment")
            if options["discover"]:
                if not settings.DISCOVERY_ON_STARTUP:
                    self.stdout.write("DISCOVERY_ON_STARTUP is off: no discovery queued")
                    return
                ids = list(sources_enabled().values_list("pk", flat=True))
                discovery_enqueue(source_ids=ids, trigger="startup")
                self.stdout.write(f"queued a discovery of {len(ids)} enabled source(s)")
