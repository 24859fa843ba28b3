"""PostgreSQL backend that keeps every table of the service in one schema.

The platform's database is shared with other services, so nothing may be created in ``public``.
Each connection sets ``search_path`` to the schema (settings ``DATABASES[...]["SCHEMA"]``), and
``prepare_database`` (called by ``migrate`` before anything else) creates the schema if missing.
"""

from __future__ import annotations

from typing import Any

from django_prometheus.db.backends.postgresql import base
from psycopg import sql


class DatabaseWrapper(base.DatabaseWrapper):
    """django-prometheus's instrumented PostgreSQL wrapper (query and error metrics), pinned to one schema."""

    @property
    def schema_name(self) -> str:
        return str(self.settings_dict.get("SCHEMA") or "model_registry")

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # Set at connect time (not per query) so pooled or long-lived connections keep it.
        search_path = f"-c search_path={self.schema_name}"
        existing = params.get("options")
        params["options"] = f"{existing} {search_path}" if existing else search_path
        return params

    def prepare_database(self) -> None:
        super().prepare_database()
        with self.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema_name)))
