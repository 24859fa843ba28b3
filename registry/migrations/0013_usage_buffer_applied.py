"""The usage buffer's markers: the drain records each entry it wrote in the same transaction (registry/telemetry/buffering.py)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0012_status_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageBufferApplied",
            fields=[
                (
                    "entry",
                    models.CharField(
                        help_text="The buffer entry's own id (a UUID).",
                        max_length=32,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("applied_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "db_table": "usage_buffer_applied",
            },
        ),
    ]
