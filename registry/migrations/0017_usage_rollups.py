"""Hourly usage rollups (``model_usage_rollup``), built for the usage already recorded.

On PostgreSQL a statement trigger keeps them (``TRIGGER_SQL``); elsewhere the ingestion services
do (registry/telemetry/rollups.py). The rollups of existing rows are computed here with SQL and code frozen in this migration (not
imported from registry/telemetry/rollups.py, which may change after it): on PostgreSQL one
INSERT ... SELECT (10M rows: about a minute); elsewhere the rows are read once, in id order, and
summed in memory per model and hour (SQLite installs are small).
"""

import math
from decimal import Decimal

import django.db.models.deletion
from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

GAMMA = 1.04  # registry/telemetry/histograms.py

BUILD_SQL = """
INSERT INTO model_usage_rollup (
    model_id, model_name, hour, records, requests, tokens, input_tokens, output_tokens, errors, cost,
    uncosted_requests, latency_weighted, latency_requests, latency_records, latency_histogram
)
SELECT s.model_id, s.model_name, s.hour, s.records, s.requests, s.tokens, s.input_tokens, s.output_tokens,
       s.errors, s.cost, s.uncosted_requests, s.latency_weighted, s.latency_requests, s.latency_records,
       COALESCE(h.histogram, '{}'::jsonb)
FROM (
    SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour, count(*) AS records,
           COALESCE(sum(request_count), 0) AS requests, COALESCE(sum(token_count), 0) AS tokens,
           COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
           COALESCE(sum(error_count), 0) AS errors, sum(cost) AS cost,
           COALESCE(sum(request_count) FILTER (WHERE cost IS NULL), 0) AS uncosted_requests,
           COALESCE(sum(average_latency * request_count) FILTER (WHERE average_latency IS NOT NULL), 0)
               AS latency_weighted,
           COALESCE(sum(request_count) FILTER (WHERE average_latency IS NOT NULL), 0) AS latency_requests,
           count(average_latency) AS latency_records
    FROM model_usage GROUP BY 1, 2, 3
) s
LEFT JOIN (
    SELECT model_id, model_name, hour, jsonb_object_agg(bucket, n) AS histogram
    FROM (
        SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour,
               CASE WHEN average_latency <= 0 THEN 'z'
                    ELSE ceil(ln(average_latency) / ln(%s))::bigint::text END AS bucket,
               count(*) AS n
        FROM model_usage WHERE average_latency IS NOT NULL GROUP BY 1, 2, 3, 4
    ) buckets
    GROUP BY 1, 2, 3
) h ON h.model_id IS NOT DISTINCT FROM s.model_id AND h.model_name = s.model_name AND h.hour = s.hour
"""

# Keeps the rollups on PostgreSQL: after each INSERT or COPY into model_usage, the statement's rows
# (a transition table) are summed per model, name and hour and added to their rollups, in the
# inserting transaction, rows locked in key order (ORDER BY) so two statements cannot deadlock.
# Measured against the same work done in Python by the service (docs/BENCHMARKS.md, usage rollups).
TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION model_usage_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $function$
BEGIN
    INSERT INTO model_usage_rollup AS r (
        model_id, model_name, hour, records, requests, tokens, input_tokens, output_tokens, errors, cost,
        uncosted_requests, latency_weighted, latency_requests, latency_records, latency_histogram
    )
    SELECT s.model_id, s.model_name, s.hour, s.records, s.requests, s.tokens, s.input_tokens, s.output_tokens,
           s.errors, s.cost, s.uncosted_requests, s.latency_weighted, s.latency_requests, s.latency_records,
           COALESCE(h.histogram, '{}'::jsonb)
    FROM (
        SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour, count(*) AS records,
               COALESCE(sum(request_count), 0) AS requests, COALESCE(sum(token_count), 0) AS tokens,
               COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
               COALESCE(sum(error_count), 0) AS errors, sum(cost) AS cost,
               COALESCE(sum(request_count) FILTER (WHERE cost IS NULL), 0) AS uncosted_requests,
               COALESCE(sum(average_latency * request_count) FILTER (WHERE average_latency IS NOT NULL), 0)
                   AS latency_weighted,
               COALESCE(sum(request_count) FILTER (WHERE average_latency IS NOT NULL), 0) AS latency_requests,
               count(average_latency) AS latency_records
        FROM new_rows GROUP BY 1, 2, 3
    ) s
    LEFT JOIN (
        SELECT model_id, model_name, hour, jsonb_object_agg(bucket, n) AS histogram
        FROM (
            SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour,
                   CASE WHEN average_latency <= 0 THEN 'z'
                        ELSE ceil(ln(average_latency) / ln(1.04))::bigint::text END AS bucket,
                   count(*) AS n
            FROM new_rows WHERE average_latency IS NOT NULL GROUP BY 1, 2, 3, 4
        ) buckets
        GROUP BY 1, 2, 3
    ) h ON h.model_id IS NOT DISTINCT FROM s.model_id AND h.model_name = s.model_name AND h.hour = s.hour
    ORDER BY 1, 2, 3
    ON CONFLICT (model_id, model_name, hour) DO UPDATE SET
        records = r.records + EXCLUDED.records,
        requests = r.requests + EXCLUDED.requests,
        tokens = r.tokens + EXCLUDED.tokens,
        input_tokens = r.input_tokens + EXCLUDED.input_tokens,
        output_tokens = r.output_tokens + EXCLUDED.output_tokens,
        errors = r.errors + EXCLUDED.errors,
        cost = CASE WHEN r.cost IS NULL THEN EXCLUDED.cost WHEN EXCLUDED.cost IS NULL THEN r.cost
                    ELSE r.cost + EXCLUDED.cost END,
        uncosted_requests = r.uncosted_requests + EXCLUDED.uncosted_requests,
        latency_weighted = r.latency_weighted + EXCLUDED.latency_weighted,
        latency_requests = r.latency_requests + EXCLUDED.latency_requests,
        latency_records = r.latency_records + EXCLUDED.latency_records,
        latency_histogram = (
            SELECT COALESCE(jsonb_object_agg(key, total), '{}'::jsonb)
            FROM (SELECT key, sum(value::bigint) AS total
                  FROM (SELECT * FROM jsonb_each_text(r.latency_histogram)
                        UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.latency_histogram)) AS both_
                  GROUP BY key) AS merged
        );
    RETURN NULL;
END
$function$;
CREATE TRIGGER model_usage_rollup_add AFTER INSERT ON model_usage REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION model_usage_rollup_add();
"""

DROP_TRIGGER_SQL = """
DROP TRIGGER IF EXISTS model_usage_rollup_add ON model_usage;
DROP FUNCTION IF EXISTS model_usage_rollup_add();
"""


def create_trigger(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def drop_trigger(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER_SQL)


_SUMMED = (
    "records",
    "requests",
    "tokens",
    "input_tokens",
    "output_tokens",
    "errors",
    "uncosted_requests",
    "latency_requests",
    "latency_records",
)


def build_rollups(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Through the connection, not schema_editor.execute (which a test cannot open on SQLite).
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BUILD_SQL, [GAMMA])
        return
    usage = apps.get_model("registry", "ModelUsage")
    rollup = apps.get_model("registry", "UsageRollup")
    figures: dict[tuple[object, str, object], dict[str, object]] = {}
    columns = (
        "model_id",
        "model_name",
        "timestamp",
        "token_count",
        "input_tokens",
        "output_tokens",
        "request_count",
        "average_latency",
        "error_count",
        "cost",
    )
    for model_id, name, moment, tokens, input_tokens, output_tokens, requests, latency, errors, cost in (
        usage.objects.order_by("pk").values_list(*columns).iterator(chunk_size=5000)
    ):
        hour = moment.replace(minute=0, second=0, microsecond=0)
        row = figures.setdefault(
            (model_id, name, hour),
            {**dict.fromkeys(_SUMMED, 0), "cost": None, "latency_weighted": 0.0, "latency_histogram": {}},
        )
        row["records"] += 1
        row["requests"] += requests
        row["tokens"] += tokens or 0
        row["input_tokens"] += input_tokens or 0
        row["output_tokens"] += output_tokens or 0
        row["errors"] += errors
        if cost is None:
            row["uncosted_requests"] += requests
        else:
            row["cost"] = (row["cost"] or Decimal(0)) + cost
        if latency is not None:
            row["latency_weighted"] += latency * requests
            row["latency_requests"] += requests
            row["latency_records"] += 1
            bucket = "z" if latency <= 0 else str(math.ceil(math.log(latency) / math.log(GAMMA)))
            row["latency_histogram"][bucket] = row["latency_histogram"].get(bucket, 0) + 1
    rollup.objects.bulk_create(
        [
            rollup(model_id=model_id, model_name=name, hour=hour, **row)
            for (model_id, name, hour), row in figures.items()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0016_price_start_known"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("model_name", models.CharField(max_length=100)),
                ("hour", models.DateTimeField(help_text="The UTC hour's start.")),
                ("records", models.BigIntegerField(default=0)),
                ("requests", models.BigIntegerField(default=0)),
                ("tokens", models.BigIntegerField(default=0)),
                ("input_tokens", models.BigIntegerField(default=0)),
                ("output_tokens", models.BigIntegerField(default=0)),
                ("errors", models.BigIntegerField(default=0)),
                ("cost", models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ("uncosted_requests", models.BigIntegerField(default=0)),
                ("latency_weighted", models.FloatField(default=0.0)),
                ("latency_requests", models.BigIntegerField(default=0)),
                ("latency_records", models.BigIntegerField(default=0)),
                ("latency_histogram", models.JSONField(default=dict)),
                (
                    "model",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="usage_rollups",
                        to="registry.registeredmodel",
                    ),
                ),
            ],
            options={
                "db_table": "model_usage_rollup",
                "ordering": ["-hour", "model_name"],
                "indexes": [models.Index(fields=["hour"], name="model_usage_rollup_hour")],
                "constraints": [
                    models.UniqueConstraint(fields=("model", "model_name", "hour"), name="model_usage_rollup_once")
                ],
            },
        ),
        # The trigger first: created in this migration's transaction, it locks model_usage against
        # inserts until the commit, so no row lands between the build and the trigger.
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
        migrations.RunPython(build_rollups, migrations.RunPython.noop, elidable=False),
    ]
