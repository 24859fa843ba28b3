"""Cache-read and cache-write prices (models, dated prices) and cached input tokens of usage records.

SQLite adds a check constraint by rebuilding the table, which its triggers on ``models`` (the read
path's stale marks, registry/reads/documents.py) would stop: they are dropped first and installed
again last, as 0010 installed them.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from registry.reads import documents


def remove(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    documents.remove_triggers(schema_editor.connection)


def install(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    documents.install_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0014_trusted_network_reads"),
    ]

    operations = [
        migrations.RunPython(remove, install, elidable=False),
        migrations.AddField(
            model_name="modelprice",
            name="cache_read_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                help_text="USD per million cached input tokens read.",
                max_digits=12,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="modelprice",
            name="cache_write_per_mtok",
            field=models.DecimalField(
                blank=True, decimal_places=6, help_text="USD per million input tokens cached.", max_digits=12, null=True
            ),
        ),
        migrations.AddField(
            model_name="modelusage",
            name="cached_input_tokens",
            field=models.IntegerField(
                blank=True, help_text="Of input_tokens, how many were read from the provider's prompt cache.", null=True
            ),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="cache_read_cost_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                help_text="Price per million input tokens read from the provider's prompt cache, USD.",
                max_digits=12,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="cache_write_cost_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                help_text="Price per million input tokens written to the provider's prompt cache, USD.",
                max_digits=12,
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="alert",
            name="kind",
            field=models.CharField(
                choices=[
                    ("error_rate", "Error rate above threshold"),
                    ("latency", "Latency worse than baseline"),
                    ("unavailable", "Model unavailable too long"),
                    ("source_failing", "Discovery source failing"),
                    ("unpriced_usage", "Usage of a model without a known price"),
                    ("catalog_price_jump", "A catalog refresh changed a price more than 100-fold"),
                ],
                max_length=30,
            ),
        ),
        migrations.AddConstraint(
            model_name="modelprice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cache_read_per_mtok__isnull", True), ("cache_read_per_mtok__gte", 0), _connector="OR"
                ),
                name="model_prices_cache_read_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="modelprice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cache_write_per_mtok__isnull", True), ("cache_write_per_mtok__gte", 0), _connector="OR"
                ),
                name="model_prices_cache_write_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="modelusage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cached_input_tokens__isnull", True), ("cached_input_tokens__gte", 0), _connector="OR"
                ),
                name="model_usage_cached_input_tokens_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cache_read_cost_per_mtok__isnull", True), ("cache_read_cost_per_mtok__gte", 0), _connector="OR"
                ),
                name="models_cache_read_cost_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cache_write_cost_per_mtok__isnull", True), ("cache_write_cost_per_mtok__gte", 0), _connector="OR"
                ),
                name="models_cache_write_cost_not_negative",
            ),
        ),
        migrations.AlterField(
            model_name="modelcapability",
            name="evidence_source",
            field=models.CharField(
                choices=[
                    ("operator", "Operator"),
                    ("provider", "Provider's declaration"),
                    ("catalog", "Catalog (genai-prices, models.dev)"),
                    ("measured", "Measured from performance records"),
                ],
                db_index=True,
                default="operator",
                max_length=20,
            ),
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
