"""Run discovery in the foreground: register the environment's sources, then sync each one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from discovery.models import RunStatus
from discovery.selectors import sources_for_discovery
from discovery.services import sources_register_from_environment
from discovery.sync import SyncReport, source_sync_report
from registry.access.audit import system_actor
from registry.catalog.credentials import redact_url

PROGRESS_EVERY = 25
NAMES_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Discover models now, in the foreground: registers the environment's sources first, then runs every "
        "enabled source (or --source NAME) and prints what it found and changed. Exits 1 when a source failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", help="Only this source (by name), even if it is disabled.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        with system_actor("command:discover"):
            sources_register_from_environment()
            sources = list(sources_for_discovery(name=options["source"]))
            if options["source"] and not sources:
                raise CommandError(f"no source named {options['source']!r}")
            if not sources:
                self.stdout.write("no enabled source: set OLLAMA_URL, OPENAI_API_KEY or ANTHROPIC_API_KEY, or add one")
                return
            failed = []
            for source in sources:
                self.stdout.write(f"{source.name} ({source.kind}, {redact_url(source.base_url)}): discovering...")
                report = source_sync_report(
                    source=source, trigger="command", dry_run=dry_run, progress=self._progress(source.name)
                )
                self._report(report, dry_run, all_names=options["verbosity"] >= 2)
                if report.run.status == RunStatus.FAILED:
                    failed.append(source.name)
        if failed:
            raise CommandError(f"discovery failed for: {', '.join(failed)}", returncode=1)

    def _progress(self, name: str) -> Any:
        def progress(done: int, total: int) -> None:
            if done % PROGRESS_EVERY == 0 or done == total:
                self.stdout.write(f"  {name}: described {done}/{total} models")

        return progress

    def _report(self, report: SyncReport, dry_run: bool, *, all_names: bool) -> None:
        run = report.run
        verb = "would be" if dry_run else "were"
        if run.status == RunStatus.SUCCEEDED:
            self.stdout.write(
                self.style.SUCCESS(
                    f"  {run.source.name}: {run.models_seen} listed; {run.models_added} {verb} added, "
                    f"{run.models_updated} {verb} updated, {run.models_unavailable} {verb} made unavailable, "
                    f"{run.models_skipped} skipped"
                )
            )
            for label, names in (
                ("added", report.added),
                ("updated", report.updated),
                ("made unavailable", report.unavailable),
                ("skipped", report.skipped),
            ):
                if names:
                    shown = names if all_names else names[:NAMES_SHOWN]
                    more = f" and {len(names) - len(shown)} more (-v 2 lists all)" if len(names) > len(shown) else ""
                    self.stdout.write(f"    {label}: {', '.join(shown)}{more}")
            for warning in run.warnings or []:
                self.stdout.write(self.style.WARNING(f"    warning: {warning}"))
        elif run.status == RunStatus.SKIPPED:
            self.stdout.write(self.style.WARNING(f"  {run.source.name}: skipped: {run.error_message}"))
        else:
            self.stderr.write(self.style.ERROR(f"  {run.source.name}: FAILED: {run.error_message}"))
