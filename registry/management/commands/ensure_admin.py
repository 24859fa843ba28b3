"""Make sure an admin user exists (used by the container entrypoint; ``make run`` calls the same service)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registry.access.accounts import CHOOSE_PASSWORD_HINT, admin_user_ensure_from_environment


class Command(BaseCommand):
    help = "Create the admin user from DJANGO_SUPERUSER_USERNAME/_PASSWORD, or with a generated password printed once."

    def handle(self, *args: Any, **options: Any) -> None:
        result = admin_user_ensure_from_environment()
        if result.generated_password:
            # Shown once, here, and stored nowhere in clear.
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin user {result.username!r} with generated password: {result.generated_password}\n"
                    f"It is shown only this once; {CHOOSE_PASSWORD_HINT}."
                )
            )
        elif result.created:
            self.stdout.write(f"Created admin user {result.username!r}.")
        else:
            self.stdout.write(f"Admin user {result.username!r} exists.")
