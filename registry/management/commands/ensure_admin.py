"""Make sure an admin user exists (used by ``make run`` and the container entrypoint)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from registry.accounts import admin_user_ensure
from registry_project.env import env_str


class Command(BaseCommand):
    help = "Create the admin user from DJANGO_SUPERUSER_USERNAME/_PASSWORD, or with a generated password printed once."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        result = admin_user_ensure(
            username=username,
            password=env_str("DJANGO_SUPERUSER_PASSWORD"),
            email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
        )
        if result.generated_password:
            # Shown once, here, and stored nowhere in clear: note it now or reset it with changepassword.
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin user {result.username!r} with generated password: {result.generated_password}\n"
                    "It is shown only this once; change it with `python manage.py changepassword "
                    f"{result.username}`."
                )
            )
        elif result.created:
            self.stdout.write(f"Created admin user {result.username!r}.")
        else:
            self.stdout.write(f"Admin user {result.username!r} exists.")
