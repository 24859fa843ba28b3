"""The console: alert acknowledgement, operator-set model fields, and indexes for its lists and dashboard.

- ``model_usage`` gets an index on ``timestamp`` alone: the dashboard's "last 24 hours" and the usage
  list's date filters read all models over a time range, which the ``(model_id, timestamp)`` index
  cannot serve. On PostgreSQL it INCLUDEs the summed columns, so the dashboard's roll-up is an
  index-only scan (raw SQL, as in 0003: SQLite has no covering indexes).
- The role groups get their permissions again: viewers now see provider sources and discovery runs.
"""

import importlib

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

USAGE_TS_INDEX = "model_usage_ts_covering"


def create_usage_ts_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    include = (
        " INCLUDE (model_id, request_count, token_count, error_count, average_latency, cost)"
        if schema_editor.connection.vendor == "postgresql"
        else ""
    )
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {USAGE_TS_INDEX} ON model_usage (timestamp){include}")


def drop_usage_ts_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {USAGE_TS_INDEX}")


def sync_role_permissions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # The same function as 0002: each role's group gets exactly registry.access.roles' permissions.
    importlib.import_module("registry.migrations.0002_roles").create_roles(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0004_model_usage_bucket_statistics"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="acknowledged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="alert",
            name="acknowledged_by",
            field=models.CharField(blank=True, default="", max_length=150),
        ),
        migrations.AddField(
            model_name="alert",
            name="resolved_by",
            field=models.CharField(
                blank=True, default="", help_text="Empty when the alert check resolved it.", max_length=150
            ),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="operator_fields",
            field=models.JSONField(
                blank=True, default=list, help_text="Fields an operator set by hand; discovery leaves them as they are."
            ),
        ),
        migrations.AddIndex(
            model_name="modelperformance",
            index=models.Index(fields=["timestamp"], name="model_performance_ts"),
        ),
        migrations.RunPython(create_usage_ts_index, drop_usage_ts_index, elidable=False),
        migrations.RunPython(sync_role_permissions, migrations.RunPython.noop),
    ]
