"""``manage.py prune``: apply retention now, as the beat task ``registry.prune`` does (``--dry-run``: count only)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from registry.operations.retention import TABLES, retention_apply


class Command(BaseCommand):
    help = (
        "Remove the rows past their retention (RETENTION_* settings) from every table that grows, in batches; "
        "--dry-run prints what would be removed, per table, and removes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count the rows that would go; remove nothing.")
        parser.add_argument("--batch-size", type=int, help="Rows per batch (default RETENTION_BATCH_SIZE).")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        dry_run = options["dry_run"]
        outcome = retention_apply(dry_run=dry_run, batch_size=batch_size)
        if outcome.locked:
            raise CommandError("another prune is running (it holds the prune lock); nothing was removed.")
        verb = "would remove" if dry_run else "removed"
        for table in TABLES:
            keep = f"older than {table.keep_days} days" if table.keep_days else "none: kept for ever"
            if table.keep_days and table.whole_days:
                keep = f"UTC days wholly older than {table.keep_days} days"
            self.stdout.write(f"{table.table}: {verb} {outcome.removed[table.table]} ({keep}, {table.setting})")
