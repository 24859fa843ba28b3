"""``manage.py refresh_catalogs``: fetch the price and model-fact catalogs now, as the scheduled task does."""

from __future__ import annotations

from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from discovery.catalog_refresh import CatalogRejected, catalog_refresh, update_url
from discovery.models import CatalogName, CatalogRefreshStatus
from registry.access.audit import system_actor


class Command(BaseCommand):
    help = (
        "Refresh the catalogs from CATALOG_PRICES_UPDATE_URL / CATALOG_MODELS_UPDATE_URL (or --url), validate "
        "them and keep each accepted one as the snapshot in use. Exits 1 when a refresh failed or was rejected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--catalog", choices=[c.value for c in CatalogName], help="Only this catalog.")
        parser.add_argument("--url", help="Fetch from this URL instead of the configured one (needs --catalog).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["url"] and not options["catalog"]:
            raise CommandError("--url needs --catalog")
        catalogs = [options["catalog"]] if options["catalog"] else [c.value for c in CatalogName]
        failed = False
        for catalog in catalogs:
            url = options["url"] or update_url(catalog)
            if not url:
                self.stdout.write(f"{catalog}: no update URL configured; the bundled snapshot stays in use")
                continue
            try:
                with system_actor("catalog refresh"):
                    row = catalog_refresh(catalog=catalog, url=url)
            except (requests.RequestException, CatalogRejected) as exc:
                self.stderr.write(f"{catalog}: could not fetch {url}: {exc}")
                failed = True
                continue
            if row is None:
                self.stdout.write(f"{catalog}: unchanged since the last refresh")
            elif row.status == CatalogRefreshStatus.REJECTED:
                self.stderr.write(f"{catalog}: rejected ({'; '.join(row.problems)[:500]}); the snapshot in use stays")
                failed = True
            else:
                self.stdout.write(
                    f"{catalog}: {row.version} in use, {row.entries} models, {len(row.models_affected)} registered "
                    "models affected (discovery applies it on each source's next run)"
                )
        if failed:
            raise SystemExit(1)
