"""On PostgreSQL every table of the service lives in schema model_registry, none in public."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

DESIGN_TABLES = {
    "models",
    "model_endpoints",
    "model_capabilities",
    "model_parameters",
    "model_performance",
    "model_usage",
}


@pytest.fixture(autouse=True)
def _require_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no schemas")


def tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [schema],
        )
        return {row[0] for row in cursor.fetchall()}


def test_design_tables_live_in_model_registry_schema() -> None:
    assert DESIGN_TABLES <= tables_in("model_registry")


def test_no_table_of_the_service_is_in_public() -> None:
    service_tables = {model._meta.db_table for model in apps.get_models()} | {"django_migrations"}
    assert service_tables <= tables_in("model_registry")
    assert not (service_tables & tables_in("public"))


def test_headers_and_parameter_values_are_jsonb() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'model_registry'
              AND (table_name, column_name) IN (('model_endpoints', 'headers'),
                   ('model_parameters', 'default_value'), ('model_parameters', 'min_value'),
                   ('model_parameters', 'max_value'))
            """
        )
        types = {(table, column): data_type for table, column, data_type in cursor.fetchall()}
    assert set(types.values()) == {"jsonb"}
    assert len(types) == 4


def test_connections_search_only_the_service_schema() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == "model_registry"
