"""``manage.py registry export|apply``: the registry as a file (docs/registry-file.md).

``export`` writes the catalog (models with their capabilities, parameters, endpoints and prices, and
the capability rules) as YAML or JSON; ``apply FILE`` prints the diff with the catalog and applies it
in one transaction, audited as ``system:registry-apply``; ``--dry-run`` prints the diff only.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.access.audit import system_actor
from registry.catalog.registry_apply import registry_apply, registry_plan
from registry.catalog.registry_file import (
    FORMATS,
    RegistryFileInvalid,
    registry_export,
    registry_file_dump,
    registry_file_load,
)
from registry.models import Provider

AUDIT_ACTOR = "registry-apply"


class Command(BaseCommand):
    help = "Export the registry to a YAML or JSON file, or apply such a file (its diff first; --dry-run: only that)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        assert isinstance(parser, CommandParser)
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        export = actions.add_parser("export", help="Write the registry as a file (stdout unless --output).")
        export.add_argument("--format", choices=FORMATS, help="yaml (default) or json; --output's suffix decides.")
        export.add_argument("--output", "-o", help="The file to write (default: standard output).")
        export.add_argument(
            "--provider",
            action="append",
            choices=Provider.values,
            default=[],
            help="Only this provider's models (repeatable); the file's scope says so for --prune.",
        )
        apply = actions.add_parser("apply", help="Apply a file: print the diff, then change what differs.")
        apply.add_argument("file", help="A file written by export (YAML or JSON); '-' reads standard input.")
        apply.add_argument("--dry-run", action="store_true", help="Print the diff; change nothing.")
        apply.add_argument(
            "--prune",
            action="store_true",
            help="Also delete what the file leaves out (models in its scope, a listed model's rows, rules).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "export":
            self.export(options)
        else:
            self.apply(options)

    def export(self, options: dict[str, Any]) -> None:
        output: str | None = options["output"]
        file_format = options["format"] or ("json" if output and output.endswith(".json") else "yaml")
        text = registry_file_dump(registry_export(providers=options["provider"]), file_format=file_format)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"registry exported to {output} ({file_format})")
        else:
            self.stdout.write(text, ending="")

    def apply(self, options: dict[str, Any]) -> None:
        name: str = options["file"]
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(f"{name}: {exc.strerror}") from exc
        try:
            document = registry_file_load(raw)
            if options["dry_run"]:
                plan = registry_plan(document, prune=options["prune"])
            else:
                with system_actor(AUDIT_ACTOR):
                    plan = registry_apply(document, prune=options["prune"])
        except RegistryFileInvalid as exc:
            errors = "\n".join(f"  {error}" for error in exc.errors)
            raise CommandError(f"{name} refused, nothing applied ({len(exc.errors)} errors):\n{errors}") from exc
        self.stdout.write(plan.text())
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing applied.")
        elif plan.changes:
            self.stdout.write(f"Applied {len(plan.changes)} changes.")
