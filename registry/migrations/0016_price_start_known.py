"""Dated prices say whether their start is known (issue 23): discovery's were dated at the run that saw them."""

from typing import Any

from django.db import migrations, models


def discovery_prices_start_at_their_run(apps: Any, schema_editor: Any) -> None:
    # Until now discovery dated a price at the run that first saw it: when it started is unknown.
    apps.get_model("registry", "ModelPrice").objects.filter(set_by="discovery").update(start_known=False)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0015_catalog_cache_prices"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelprice",
            name="start_known",
            field=models.BooleanField(
                default=True,
                help_text="The price is in force from effective_from, as stated; unchecked: only seen from then "
                "(as the model's first price it also costs earlier usage).",
            ),
        ),
        migrations.RunPython(discovery_prices_start_at_their_run, migrations.RunPython.noop),
    ]
