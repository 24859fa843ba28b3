"""``manage.py usage_buffer``: the usage buffer's state and dead letters; ``--drain`` now; ``--requeue-dead``."""

from __future__ import annotations

import logging
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from registry.access.audit import system_actor
from registry.operations import usage_buffer
from registry.telemetry.buffering import records_decode, usage_buffer_drain

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Show the usage buffer (usage kept in Redis while the database was away) and its dead letters; "
        "--drain writes it now, as the beat task does; --requeue-dead puts the dead letters back at its end "
        "(after their cause is fixed, e.g. the model they name re-created)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--drain", action="store_true", help="Write the buffer to the database now.")
        parser.add_argument(
            "--requeue-dead", action="store_true", help="Move every dead letter back to the buffer, to be drained."
        )
        parser.add_argument("--limit", type=int, default=20, help="Dead letters to list (default 20).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not usage_buffer.enabled():
            raise CommandError("the usage buffer is off: no REDIS_URL, or USAGE_BUFFER_ENABLED=false.")
        try:
            if options["requeue_dead"]:
                moved = usage_buffer.dead_letters_requeue()
                logger.warning("usage buffer: %d dead letters moved back to the buffer by an operator", moved)
                self.stdout.write(f"requeued {moved} dead letters")
            if options["drain"]:
                with system_actor("usage-buffer"):
                    outcome = usage_buffer_drain()
                if outcome.stopped not in (None, "time"):
                    raise CommandError(f"the drain stopped: {outcome.stopped} ({outcome.as_dict()})")
                self.stdout.write(
                    f"wrote {outcome.records} records of {outcome.entries} posts; {outcome.dead} posts dead-lettered"
                )
            self._show(options["limit"])
        except RedisError as exc:
            raise CommandError(f"Redis cannot be reached: {exc}") from exc

    def _show(self, limit: int) -> None:
        state = usage_buffer.buffer_state()
        age = "" if state.oldest_age_seconds is None else f", oldest {state.oldest_age_seconds:.0f} s old"
        self.stdout.write(f"buffer: {state.records} records in {state.entries} posts{age}")
        self.stdout.write(f"dead letters: {state.dead_letters}")
        for dead in usage_buffer.dead_letters(limit):
            records = records_decode(dead.get("records", "[]"))
            self.stdout.write(
                f"  {dead.get('id')}: {len(records)} records for {dead.get('ref')!r}, received {dead.get('received')}, "
                f"dead {dead.get('dead_at')}: {dead.get('reason')}"
            )
