"""``manage.py wait_for_database``: block until the database accepts connections (container start)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection


class Command(BaseCommand):
    help = "Wait until the database answers a query, retrying every second up to --timeout seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=60.0, help="Give up after this many seconds.")

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        attempt = 0
        while True:
            attempt += 1
            try:
                # ensure_connection, not a query: the schema may not exist yet (migrate creates it).
                connection.ensure_connection()
            except OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"the database did not answer within {options['timeout']:.0f} s: {exc}") from exc
                if attempt == 1 or attempt % 10 == 0:
                    self.stdout.write(f"waiting for the database ({str(exc).strip().splitlines()[0]})")
                connection.close()
                time.sleep(1.0)
                continue
            self.stdout.write("the database answers")
            connection.close()
            return
