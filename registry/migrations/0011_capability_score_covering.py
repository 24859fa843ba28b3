"""The capability-score index made covering (PostgreSQL only): it also carries the model.

Both selections read, for a requested capability, every model's score: ``POST /models/select``
joins the capability's rows to all the models, ``GET /models/select`` ranks them. With the plain
``(capability, capability_score)`` index PostgreSQL found the rows in the index and then visited
the table for each one's ``model_id``; with ``model_id`` INCLUDEd it answers from the index alone
(an index-only scan, once autovacuum has marked the pages all-visible). Over 1,000 models, the
explained selection's models query went from 2.55 to 2.2 ms of PostgreSQL's CPU
(docs/BENCHMARKS.md).

The index keeps its name and its key columns, so the model's ``Meta.indexes`` (which SQLite
builds as it is: it has no covering indexes) still describes it; raw SQL, as in migration 0003.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "model_capabilities_cap_score"


def _rebuild(schema_editor: BaseDatabaseSchemaEditor, include: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"CREATE INDEX {INDEX} ON model_capabilities (capability, capability_score){include}")


def covering(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _rebuild(schema_editor, " INCLUDE (model_id)")


def plain(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _rebuild(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [("registry", "0010_model_documents")]

    operations = [migrations.RunPython(covering, plain, elidable=False)]
