"""``manage.py reencrypt_secrets``: rewrite stored secrets under the current key (after a rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registry.operations.secrets import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key and secret header with the current SECRET_KEY and first "
        "FIELD_ENCRYPTION_SALT, so that old keys can then be removed from the fallbacks."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for label, count in secrets_reencrypt().items():
            self.stdout.write(f"{label}: {count} rows re-encrypted")
