"""Issue 22's figure: how many of the models discovery registers from realistic provider lists get a
price and a context window from the catalogs, and whether dated snapshots get their base's price.

The lists (``fakes/data/*/models_late_2025.json``) are reconstructed from the providers' public model
lists of late 2025 in their wire formats (see ``fakes/data/README.md``); they are served by the same
local fake servers as the other discovery tests and go through the real clients, the bundled
catalogs and ``source_sync``. docs/discovery.md ("Coverage") records the figures these tests hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from discovery.catalogs import catalogs_in_use
from discovery.models import ProviderSource, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import ModelType, RegisteredModel
from tests.discovery.fakes import anthropic, openai
from tests.discovery.fakes.anthropic import FakeAnthropic
from tests.discovery.fakes.openai import FakeOpenAI
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db

FIXTURE = "models_late_2025.json"
# A dated snapshot: "gpt-4o-2024-08-06" (OpenAI) or "claude-sonnet-4-20250514" (Anthropic).
DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
# What the catalogs do not know, by provider (docs/discovery.md names them): a new catalog version
# that fills or opens a gap changes these, and the docs with them.
WITHOUT_PRICE: dict[str, set[str]] = {"openai": set(), "anthropic": set()}
WITHOUT_CONTEXT: dict[str, set[str]] = {"openai": {"davinci-002", "babbage-002"}, "anthropic": set()}


@dataclass(frozen=True)
class Coverage:
    registered: int
    priced: int
    with_context: int
    covered: int  # a price and a context window
    without_price: set[str]
    without_context: set[str]

    @property
    def share(self) -> float:
        return self.covered / self.registered


def coverage(provider: str) -> Coverage:
    models = list(RegisteredModel.objects.filter(provider=provider))
    without_price = {m.name for m in models if m.input_cost_per_mtok is None or m.output_cost_per_mtok is None}
    without_context = {m.name for m in models if m.context_window is None}
    return Coverage(
        registered=len(models),
        priced=len(models) - len(without_price),
        with_context=len(models) - len(without_context),
        covered=len([m for m in models if m.name not in without_price | without_context]),
        without_price=without_price,
        without_context=without_context,
    )


@pytest.fixture
def realistic_sources() -> Iterator[tuple[ProviderSource, ProviderSource]]:
    fake_openai = FakeOpenAI(models=openai.load_models(FIXTURE)).start()
    fake_anthropic = FakeAnthropic(models=anthropic.load_models(FIXTURE)).start()
    try:
        yield (
            ProviderSourceFactory(
                name="openai",
                kind=SourceKind.OPENAI,
                base_url=f"{fake_openai.url}/v1",
                api_key=fake_openai.api_key,
            ),
            ProviderSourceFactory(
                name="anthropic",
                kind=SourceKind.ANTHROPIC,
                base_url=fake_anthropic.url,
                api_key=fake_anthropic.api_key,
            ),
        )
    finally:
        fake_openai.stop()
        fake_anthropic.stop()


@pytest.fixture
def discovered(realistic_sources: tuple[ProviderSource, ProviderSource]) -> None:
    for source in realistic_sources:
        with system_actor("discovery"):
            run = source_sync(source=source, trigger="manual")
        assert run.status == "succeeded", run.error_message


def test_the_realistic_lists_register_chat_completion_and_embedding_models_and_skip_the_rest(discovered: None) -> None:
    # What is counted below: every model discovery registers. Audio, image, moderation and realtime
    # ids are skipped by the OpenAI client (counted as skipped, never registered).
    listed = {entry["id"] for entry in openai.load_models(FIXTURE)}
    registered = dict(RegisteredModel.objects.filter(provider="openai").values_list("name", "model_type"))
    assert (len(listed), len(registered)) == (79, 59)
    assert sorted(listed - set(registered)) == sorted(
        [
            "codex-mini-latest",
            "dall-e-2",
            "dall-e-3",
            "gpt-4o-audio-preview",
            "gpt-4o-audio-preview-2024-12-17",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-tts",
            "gpt-4o-realtime-preview",
            "gpt-4o-realtime-preview-2024-12-17",
            "gpt-4o-transcribe",
            "gpt-audio",
            "gpt-image-1",
            "gpt-realtime",
            "omni-moderation-2024-09-26",
            "omni-moderation-latest",
            "tts-1",
            "tts-1-1106",
            "tts-1-hd",
            "tts-1-hd-1106",
            "whisper-1",
        ]
    )
    types = sorted(registered.values())
    assert (types.count(ModelType.CHAT), types.count(ModelType.COMPLETION), types.count(ModelType.EMBEDDING)) == (
        52,
        4,
        3,
    )
    assert RegisteredModel.objects.filter(provider="anthropic").count() == 9


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_at_least_95_percent_of_registered_models_get_a_price_and_a_context_window(
    discovered: None, provider: str
) -> None:
    found = coverage(provider)
    print(  # the figure, for `pytest -s` (docs/discovery.md records it)
        f"{provider}: {found.covered} of {found.registered} with a price and a context window "
        f"({found.priced} priced, {found.with_context} with a context window); "
        f"no price: {sorted(found.without_price)}; no context window: {sorted(found.without_context)}"
    )
    assert found.share >= 0.95, found
    assert (found.without_price, found.without_context) == (WITHOUT_PRICE[provider], WITHOUT_CONTEXT[provider])


def test_the_openai_and_anthropic_figures_are_the_ones_the_docs_record(discovered: None) -> None:
    assert (coverage("openai").covered, coverage("openai").registered) == (57, 59)
    assert (coverage("anthropic").covered, coverage("anthropic").registered) == (9, 9)


def test_every_dated_snapshot_gets_its_base_models_price(discovered: None) -> None:
    """A snapshot is costed like its base model, unless the catalog prices that snapshot itself.

    ``gpt-4o-2024-05-13`` is the one such snapshot: OpenAI priced it at $5/$15 and gpt-4o at
    $2.50/$10, and genai-prices has its own entry; taking the base's price would under-cost it.
    Where the base id is not in the list (every Claude id is dated), the base is looked up in the
    catalogs, as a client asking for "claude-sonnet-4-5" would be priced.
    """
    catalogs = catalogs_in_use()
    now = timezone.now()
    registered = {model.name: model for model in RegisteredModel.objects.filter(provider__in=["openai", "anthropic"])}
    own_entries: list[str] = []
    against_listed_base: list[str] = []
    against_catalog_base: list[str] = []
    for name, model in registered.items():
        base_name = DATED.sub("", name)
        if base_name == name:
            continue
        price = (model.input_cost_per_mtok, model.output_cost_per_mtok, model.cache_read_cost_per_mtok)
        assert price[0] is not None, f"{name} has no price"
        if model.details["catalog"]["prices_match"] == f"{model.provider}/{name}":
            own_entries.append(name)
            continue
        if (base := registered.get(base_name)) is not None:
            assert price == (base.input_cost_per_mtok, base.output_cost_per_mtok, base.cache_read_cost_per_mtok), name
            against_listed_base.append(name)
            continue
        facts = catalogs.lookup(model.provider, base_name)
        assert facts is not None, f"the catalogs do not know {base_name}, the base of {name}"
        current = facts.price_at(now)
        assert current is not None, base_name
        expected = (current.input_per_mtok, current.output_per_mtok, current.cache_read_per_mtok)
        assert price == expected, name
        against_catalog_base.append(name)
    assert own_entries == ["gpt-4o-2024-05-13"]
    # OpenAI's 20 other dated snapshots have their base in the list; the nine Claude ids do not.
    assert (len(against_listed_base), len(against_catalog_base)) == (20, 9)
    assert registered["gpt-4o-2024-05-13"].input_cost_per_mtok == Decimal("5")
