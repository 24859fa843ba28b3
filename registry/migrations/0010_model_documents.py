"""The table of rendered model bodies and the triggers that keep it fresh (registry/reads/documents.py)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from registry.reads import documents


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # The statements differ by vendor (statement-level triggers on PostgreSQL, row-level on SQLite).
    documents.install_triggers(schema_editor.connection)


def remove(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    documents.remove_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0009_model_runtime"),
        ("discovery", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ModelDocument",
            fields=[
                (
                    "model",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="document",
                        serialize=False,
                        to="registry.registeredmodel",
                    ),
                ),
                ("body", models.TextField(null=True)),
                ("format_version", models.CharField(default="", max_length=100)),
                ("revision", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "model_documents"},
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
