"""Each hourly rollup holds its hour's earliest and latest record timestamp (``first_at``, ``last_at``).

With them a window edge inside an hour whose records all fall inside (or all outside) the window
reads the hour's rollup instead of its raw rows (registry/telemetry/usage.py). The trigger's
function is replaced under the same name (``model_usage_rollup_add``): the trigger itself, and any
that re-creates it with ``EXECUTE FUNCTION model_usage_rollup_add()``, keeps calling it. Existing
rollups get the bounds of the raw rows still stored; an hour whose raw rows are gone keeps NULL
bounds (read as its rollup). SQL and code frozen here, as in 0017.
"""

import importlib
from datetime import UTC

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.models import Max, Min
from django.db.models.functions import TruncHour

# 0017's function, with min/max of the statement's timestamps per hour, widened on conflict. A
# rollup with records but NULL bounds (pruned before this migration) keeps them unknown.
FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION model_usage_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $function$
BEGIN
    INSERT INTO model_usage_rollup AS r (
        model_id, model_name, hour, records, requests, tokens, input_tokens, output_tokens, errors, cost,
        uncosted_requests, latency_weighted, latency_requests, latency_records, latency_histogram,
        first_at, last_at
    )
    SELECT s.model_id, s.model_name, s.hour, s.records, s.requests, s.tokens, s.input_tokens, s.output_tokens,
           s.errors, s.cost, s.uncosted_requests, s.latency_weighted, s.latency_requests, s.latency_records,
           COALESCE(h.histogram, '{}'::jsonb), s.first_at, s.last_at
    FROM (
        SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour, count(*) AS records,
               COALESCE(sum(request_count), 0) AS requests, COALESCE(sum(token_count), 0) AS tokens,
               COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
               COALESCE(sum(error_count), 0) AS errors, sum(cost) AS cost,
               COALESCE(sum(request_count) FILTER (WHERE cost IS NULL), 0) AS uncosted_requests,
               COALESCE(sum(average_latency * request_count) FILTER (WHERE average_latency IS NOT NULL), 0)
                   AS latency_weighted,
               COALESCE(sum(request_count) FILTER (WHERE average_latency IS NOT NULL), 0) AS latency_requests,
               count(average_latency) AS latency_records,
               min("timestamp") AS first_at, max("timestamp") AS last_at
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
        ),
        first_at = CASE WHEN r.records = 0 THEN EXCLUDED.first_at
                        WHEN r.first_at IS NULL THEN NULL ELSE LEAST(r.first_at, EXCLUDED.first_at) END,
        last_at = CASE WHEN r.records = 0 THEN EXCLUDED.last_at
                       WHEN r.last_at IS NULL THEN NULL ELSE GREATEST(r.last_at, EXCLUDED.last_at) END;
    RETURN NULL;
END
$function$;
"""

# Ingestion waits (SHARE blocks inserts, not reads) until this migration's transaction has filled
# the bounds and replaced the function: no record lands in between under the old function. Taken
# before the columns are added, so in ingestion's own order (model_usage, then its rollups): no deadlock.
LOCK_SQL = "LOCK TABLE model_usage IN SHARE MODE"

# COALESCE(model_id, 0) rather than IS NOT DISTINCT FROM: an equality PostgreSQL can hash-join (ids start at 1).
FILL_SQL = """
UPDATE model_usage_rollup AS r SET first_at = s.first_at, last_at = s.last_at
FROM (
    SELECT model_id, model_name, date_trunc('hour', "timestamp", 'UTC') AS hour,
           min("timestamp") AS first_at, max("timestamp") AS last_at
    FROM model_usage GROUP BY 1, 2, 3
) s
WHERE COALESCE(r.model_id, 0) = COALESCE(s.model_id, 0) AND r.model_name = s.model_name AND r.hour = s.hour;
"""


def lock_usage(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(LOCK_SQL)


def fill_bounds(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Through the connection, not schema_editor.execute (which a test cannot open on SQLite).
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL)
            cursor.execute(FUNCTION_SQL)
        return
    usage = apps.get_model("registry", "ModelUsage")
    rollup = apps.get_model("registry", "UsageRollup")
    bounds = {
        (row["model_id"], row["model_name"], row["hour"]): (row["first_at"], row["last_at"])
        for row in usage.objects.annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .values("model_id", "model_name", "hour")
        .annotate(first_at=Min("timestamp"), last_at=Max("timestamp"))
        .order_by()
    }
    changed = []
    for row in rollup.objects.all().iterator(chunk_size=5000):
        found = bounds.get((row.model_id, row.model_name, row.hour))
        if found is not None:
            row.first_at, row.last_at = found
            changed.append(row)
    rollup.objects.bulk_update(changed, ["first_at", "last_at"], batch_size=1000)


def restore_function(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        # 0017's function without its CREATE TRIGGER (the trigger is still there).
        previous = importlib.import_module("registry.migrations.0017_usage_rollups")
        function_sql = previous.TRIGGER_SQL.split("CREATE TRIGGER")[0]
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(function_sql)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0018_usage_partitions"),
    ]

    operations = [
        migrations.RunPython(lock_usage, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="usagerollup",
            name="first_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="usagerollup",
            name="last_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(fill_bounds, restore_function, elidable=False),
    ]
