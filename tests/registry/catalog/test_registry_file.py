"""The registry as a file: export, validation, the diff, and apply (registry.catalog.registry_file, registry_apply)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import DatabaseError, connection

from discovery.models import RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.catalog.registry_apply import PlanStale, registry_apply, registry_plan
from registry.catalog.registry_file import (
    RegistryFileInvalid,
    registry_export,
    registry_file_dump,
    registry_file_load,
)
from registry.models import (
    CapabilityMetric,
    EvidenceSource,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    Provider,
    RegisteredModel,
    SetBy,
)
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

API_KEY = "sk-live-4f9a8b7c6d5e"
BEARER = "Bearer tok-0123456789abcdef"
CLEAR_SECRET = "admin-typed-secret-value"


@pytest.fixture
def registry() -> RegisteredModel:
    """Two models with every kind of row, secrets included, and a capability rule."""
    source = ProviderSourceFactory(name="openai-main")
    gpt = RegisteredModelFactory(
        name="gpt-4o-mini",
        display_name="GPT-4o mini",
        provider=Provider.OPENAI,
        context_window=128_000,
        description="Small and cheap.",
        details={"family": "gpt-4o", "platform": {"task_types": ["chat"]}},
        source=source,
    )
    ModelCapabilityFactory(model=gpt, capability="code", capability_score=0.7, evidence="operator")
    ModelCapabilityFactory(
        model=gpt,
        capability="text",
        capability_score=0.83,
        set_by=SetBy.DISCOVERY,
        evidence_source=EvidenceSource.MEASURED,
        evidence="sample-weighted mean of success_rate over 30 days",
        metric_name="success_rate",
        sample_size=120,
        window_start=datetime(2026, 11, 1, tzinfo=UTC),
        window_end=datetime(2026, 11, 30, tzinfo=UTC),
    )
    ModelParameterFactory(model=gpt, parameter_name="temperature", default_value=0.7, min_value=0, max_value=2)
    ModelEndpointFactory(
        model=gpt,
        endpoint_url="https://api.openai.com/v1",
        auth_type="api_key",
        headers={"OpenAI-Organization": "org-1", "X-Api-Key": CLEAR_SECRET},
        api_key=API_KEY,
        secret_headers={"Authorization": BEARER},
    )
    ModelPrice.objects.create(
        model=gpt,
        input_per_mtok=Decimal("0.15"),
        output_per_mtok=Decimal("0.6"),
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    ModelPrice.objects.create(
        model=gpt,
        input_per_mtok=Decimal("0.125"),
        output_per_mtok=Decimal("0.5"),
        effective_from=datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
    )
    llama = RegisteredModelFactory(name="llama3:8b", display_name="Llama 3 8B", provider=Provider.OLLAMA)
    ModelCapabilityFactory(model=llama, capability="text", capability_score=0.6, evidence="ollama: declared")
    # Rows written before notes existed have none: an apply leaves them be.
    ModelCapabilityFactory(model=llama, capability="tools", capability_score=0.5, evidence="")
    CapabilityMetric.objects.create(capability="text", metric_name="success_rate", window_days=14, min_samples=20)
    return gpt


def everything_deleted() -> None:
    RegisteredModel.objects.all().delete()
    CapabilityMetric.objects.all().delete()


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """What an apply reproduces: all but the moment of export, the evidence's provenance and stored secrets."""
    document = copy.deepcopy(document)
    document.pop("exported_at")
    for model in document["models"]:
        for capability in model["capabilities"].values():
            # capability_set writes an empty note as "operator" (the API's and the console's too).
            capability["evidence"] = {"note": capability["evidence"]["note"] or "operator"}
        for endpoint in model["endpoints"]:
            endpoint.pop("credentials", None)
    return document


def test_an_export_never_carries_a_secret_only_references_to_the_stored_ones(registry: RegisteredModel) -> None:
    document = registry_export()
    for file_format in ("yaml", "json"):
        text = registry_file_dump(document, file_format=file_format)
        for secret in (API_KEY, BEARER, "tok-0123456789abcdef", CLEAR_SECRET):
            assert secret not in text
    endpoint = document["models"][0]["endpoints"][0]
    assert endpoint["credentials"] == {"api_key": "stored", "secret_headers": ["Authorization", "X-Api-Key"]}
    assert endpoint["headers"] == {"OpenAI-Organization": "org-1"}


def test_an_export_carries_every_operator_editable_field_evidence_prices_and_rules(registry: RegisteredModel) -> None:
    document = registry_export()
    assert document["version"] == 1
    gpt = document["models"][0]
    assert {key: gpt[key] for key in ("name", "display_name", "provider", "model_type", "context_window")} == {
        "name": "gpt-4o-mini",
        "display_name": "GPT-4o mini",
        "provider": "openai",
        "model_type": "chat",
        "context_window": 128_000,
    }
    assert gpt["details"] == {"family": "gpt-4o", "platform": {"task_types": ["chat"]}}
    assert gpt["capabilities"]["text"]["score"] == 0.83
    assert gpt["capabilities"]["text"]["evidence"]["source"] == "measured"
    assert gpt["capabilities"]["text"]["evidence"]["sample_size"] == 120
    assert gpt["capabilities"]["text"]["evidence"]["window_start"] == "2026-11-01T00:00:00Z"
    assert gpt["parameters"] == {"temperature": {"default": 0.7, "min": 0, "max": 2, "description": None}}
    assert gpt["prices"] == [
        {"effective_from": "2026-01-01T00:00:00Z", "input_per_mtok": "0.15", "output_per_mtok": "0.6"},
        {"effective_from": "2026-06-01T12:30:00Z", "input_per_mtok": "0.125", "output_per_mtok": "0.5"},
    ]
    assert document["capability_rules"] == [
        {
            "capability": "text",
            "metric_name": "success_rate",
            "task_category": None,
            "window_days": 14,
            "min_samples": 20,
            "stale_after_days": 7,
            "enabled": True,
        }
    ]


def test_an_export_by_provider_holds_only_its_models_and_says_its_scope(registry: RegisteredModel) -> None:
    document = registry_export(providers=["ollama"])
    assert [model["name"] for model in document["models"]] == ["llama3:8b"]
    assert document["scope"] == {"providers": ["ollama"]}


@pytest.mark.parametrize("file_format", ["yaml", "json"])
def test_export_then_apply_on_an_empty_registry_reproduces_it(registry: RegisteredModel, file_format: str) -> None:
    before = registry_export()
    text = registry_file_dump(before, file_format=file_format)
    everything_deleted()

    plan = registry_apply(registry_file_load(text))

    assert plan.applied
    assert comparable(registry_export()) == comparable(before)
    # The stored secrets are not in the file: the operator is told which ones to set again.
    assert plan.warnings == [
        "gpt-4o-mini: rest endpoint https://api.openai.com/v1: the file references its API key, header "
        "Authorization, header X-Api-Key, not stored here: a file never carries secrets; set them in the console "
        "or the API"
    ]


@pytest.mark.parametrize("file_format", ["yaml", "json"])
def test_a_second_apply_changes_nothing_and_says_so(registry: RegisteredModel, file_format: str) -> None:
    text = registry_file_dump(registry_export(), file_format=file_format)
    entries = LogEntry.objects.count()

    plan = registry_apply(registry_file_load(text))

    assert plan.changes == []
    assert "No changes: the registry already matches the file." in plan.text()
    assert LogEntry.objects.count() == entries
    # The stored secrets are kept as they were.
    endpoint = ModelEndpoint.objects.get(model=registry)
    assert endpoint.api_key == API_KEY
    assert endpoint.secret_headers == {"Authorization": BEARER}


def test_the_diff_names_each_object_and_field_and_a_dry_run_writes_nothing(registry: RegisteredModel) -> None:
    document = registry_export()
    gpt = document["models"][0]
    gpt["display_name"] = "GPT-4o mini (2026)"
    gpt["capabilities"]["code"]["score"] = 0.9
    gpt["parameters"]["top_p"] = {"default": 1.0, "min": 0, "max": 1}
    gpt["prices"].append({"effective_from": "2027-01-01T00:00:00Z", "input_per_mtok": "0.1", "output_per_mtok": "0.4"})
    entries = LogEntry.objects.count()

    plan = registry_plan(document)

    assert [change.line() for change in plan.changes] == [
        "~ update model gpt-4o-mini",
        "~ update capability gpt-4o-mini: code",
        "+ create parameter gpt-4o-mini: top_p",
        "+ create price gpt-4o-mini: from 2027-01-01T00:00:00Z",
    ]
    assert [(f.name, f.old, f.new) for f in plan.changes[0].fields] == [
        ("display_name", '"GPT-4o mini"', '"GPT-4o mini (2026)"')
    ]
    assert [(f.name, f.old, f.new) for f in plan.changes[1].fields] == [("score", "0.7", "0.9")]
    assert "2 to create, 2 to update, 0 to delete." in plan.text()
    assert RegisteredModel.objects.get(pk=registry.pk).display_name == "GPT-4o mini"
    assert LogEntry.objects.count() == entries


def test_apply_goes_through_the_services_audited_once_a_change_with_the_actor(registry: RegisteredModel) -> None:
    document = registry_export()
    document["models"][0]["display_name"] = "GPT-4o mini (2026)"
    document["models"][1]["capabilities"]["code"] = {"score": 0.4, "evidence": {"note": "tried it on our repo"}}
    document["capability_rules"][0]["window_days"] = 30
    since = LogEntry.objects.order_by("-pk").values_list("pk", flat=True).first()

    with system_actor("registry-apply"):
        plan = registry_apply(document)

    entries = LogEntry.objects.filter(pk__gt=since).order_by("pk")
    assert len(plan.changes) == 3
    assert [(entry.object_repr, entry.action) for entry in entries] == [
        ("gpt-4o-mini", LogEntry.Action.UPDATE),
        ("llama3:8b: code", LogEntry.Action.CREATE),
        ("text <- success_rate", LogEntry.Action.UPDATE),
    ]
    assert {entry.actor_email for entry in entries} == {"system:registry-apply"}
    assert entries[0].changes["display_name"] == ["GPT-4o mini", "GPT-4o mini (2026)"]


def test_what_apply_sets_becomes_the_operators(registry: RegisteredModel) -> None:
    document = registry_export()
    gpt = document["models"][0]
    gpt["display_name"] = "GPT-4o mini (ours)"
    gpt["capabilities"]["text"]["score"] = 0.9
    gpt["prices"].append({"effective_from": "2026-12-01T00:00:00Z", "input_per_mtok": "0.2", "output_per_mtok": "0.8"})
    document["models"].append(
        {"name": "claude-3-5-haiku", "display_name": "Claude 3.5 Haiku", "provider": "anthropic", "model_type": "chat"}
    )

    registry_apply(document)

    registry.refresh_from_db()
    assert {"display_name", "input_cost_per_mtok", "output_cost_per_mtok"} <= set(registry.operator_fields)
    text = ModelCapability.objects.get(model=registry, capability="text")
    assert (text.set_by, text.evidence_source, text.capability_score) == (SetBy.OPERATOR, EvidenceSource.OPERATOR, 0.9)
    assert ModelPrice.objects.get(model=registry, effective_from=datetime(2026, 12, 1, tzinfo=UTC)).set_by == "operator"
    created = RegisteredModel.objects.get(name="claude-3-5-haiku")
    assert created.operator_fields == ["display_name", "model_type", "provider"]


def test_objects_absent_from_the_file_stay_unless_pruned(registry: RegisteredModel) -> None:
    document = registry_export()
    document["models"] = [document["models"][0]]
    del document["models"][0]["capabilities"]["code"]
    document["models"][0]["prices"] = document["models"][0]["prices"][1:]
    document["capability_rules"] = []

    assert registry_plan(document).changes == []
    plan = registry_apply(document, prune=True)

    assert [change.line() for change in plan.changes] == [
        "- delete capability gpt-4o-mini: code",
        "- delete price gpt-4o-mini: from 2026-01-01T00:00:00Z",
        "- delete model llama3:8b",
        "- delete capability_rule text",
    ]
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["gpt-4o-mini"]
    assert not ModelCapability.objects.filter(model=registry, capability="code").exists()
    assert not CapabilityMetric.objects.exists()


def test_prune_of_a_file_scoped_to_a_provider_keeps_the_other_providers_models(registry: RegisteredModel) -> None:
    RegisteredModelFactory(name="qwen2.5-coder:7b", provider=Provider.OLLAMA)
    document = registry_export(providers=["ollama"])
    document["models"] = [model for model in document["models"] if model["name"] != "qwen2.5-coder:7b"]

    plan = registry_apply(document, prune=True)

    assert [change.line() for change in plan.changes] == ["- delete model qwen2.5-coder:7b"]
    assert RegisteredModel.objects.filter(name="gpt-4o-mini").exists()


def invalid(document: Any) -> list[str]:
    with pytest.raises(RegistryFileInvalid) as refused:
        registry_apply(document)
    return refused.value.errors


def test_a_file_with_errors_is_refused_as_a_whole_each_error_with_its_path(registry: RegisteredModel) -> None:
    document = registry_export()
    gpt, llama = document["models"]
    document["models"].insert(
        0, {"name": "new-model", "display_name": "New", "provider": "openai", "model_type": "chat"}
    )
    gpt["display_name"] = "changed, but must not be applied"
    gpt["colour"] = "blue"
    gpt["context_window"] = "128k"
    gpt["capabilities"]["code"]["score"] = 1.5
    gpt["prices"][1]["effective_from"] = "June 2026"
    gpt["prices"].append({"effective_from": "2026-01-01T00:00:00Z", "input_per_mtok": "-1", "output_per_mtok": 1})
    llama["provider"] = "openia"
    document["models"].append(
        {"name": "llama3:8b", "display_name": "Again", "provider": "ollama", "model_type": "chat"}
    )
    document["capability_rules"][0]["window_days"] = 0
    entries = LogEntry.objects.count()

    errors = invalid(document)

    assert errors == [
        "models[1].colour: unknown field (known: name, display_name, provider, model_type, version, description, "
        "status, context_window, details, capabilities, parameters, endpoints, prices)",
        "models[1].context_window: must be a whole number, not text",
        "models[1].capabilities.code.score: must be between 0 and 1",
        "models[1].prices[1].effective_from: must be a date and time with its time zone, like 2026-01-31T00:00:00Z "
        "(not 'June 2026')",
        "models[1].prices[2].input_per_mtok: must be between 0 and 999999.999999",
        "models[1].prices[2].effective_from: the same moment as models[1].prices[0]",
        "models[2].provider: must be one of openai, anthropic, ollama, custom (not 'openia')",
        "models[3].name: 'llama3:8b' is also models[2]",
        "capability_rules[0].window_days: must be between 1 and 3650",
    ]
    assert not RegisteredModel.objects.filter(name="new-model").exists()
    assert RegisteredModel.objects.get(pk=registry.pk).display_name == "GPT-4o mini"
    assert LogEntry.objects.count() == entries


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ([], "file: must be a mapping, not a list"),
        ({"models": []}, "version: must be 1 (the format this registry reads), not None"),
        ({"version": 1, "models": {}}, "models: must be a list, not a mapping"),
        (
            {
                "version": 1,
                "models": [{"name": "a b", "display_name": "x", "provider": "custom", "model_type": "chat"}],
            },
            "models[0].name: Names may not contain whitespace or control characters.",
        ),
        (
            {
                "version": 1,
                "models": [{"name": "m", "display_name": "M\x00", "provider": "custom", "model_type": "chat"}],
            },
            "models[0].display_name: Text may not contain NUL characters or unpaired surrogates.",
        ),
        (
            {
                "version": 1,
                "models": [
                    {
                        "name": "m",
                        "prices": [
                            {"effective_from": "2026-01-01T00:00:00", "input_per_mtok": "1", "output_per_mtok": "1"}
                        ],
                    }
                ],
            },
            "models[0].prices[0].effective_from: needs a time zone (Z or +hh:mm): a moment without one is ambiguous",
        ),
        (
            {
                "version": 1,
                "models": [
                    {
                        "name": "m",
                        "prices": [
                            {
                                "effective_from": "2026-01-01T00:00:00Z",
                                "input_per_mtok": "0.0000001",
                                "output_per_mtok": "1",
                            }
                        ],
                    }
                ],
            },
            "models[0].prices[0].input_per_mtok: at most 6 decimal places",
        ),
        (
            {"version": 1, "models": [{"name": "m", "parameters": {"top_k": {"default": 50, "min": 100, "max": 1}}}]},
            "models[0].parameters.top_k.min: greater than max (100 > 1)",
        ),
        (
            {"version": 1, "models": [{"name": "m", "capabilities": {"Code": {"score": 0.5}}}]},
            "models[0].capabilities.Code: a capability name is a lower-case slug (a-z, 0-9, '-', '_'; at most 50), "
            "as routers use it",
        ),
        (
            {"version": 1, "models": [{"name": "m", "parameters": {"seed": {"default": float("nan")}}}]},
            "models[0].parameters.seed.default: not a finite number",
        ),
        (
            {"version": 1, "models": [{"name": "brand-new", "display_name": "New"}]},
            "models[0].provider: required for a new model",
        ),
    ],
)
def test_each_kind_of_bad_input_is_named_with_its_path(document: Any, error: str) -> None:
    assert error in invalid(document)


def test_a_database_error_midway_leaves_nothing_applied(registry: RegisteredModel, on_postgres: bool) -> None:
    # A real failure of the database at the third change (a trigger refusing one row), not a mock.
    with connection.cursor() as cursor:
        if on_postgres:
            cursor.execute(
                "CREATE FUNCTION refuse_explode() RETURNS trigger AS $$ BEGIN "
                "IF NEW.parameter_name = 'explode' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_explode BEFORE INSERT ON model_parameters "
                "FOR EACH ROW EXECUTE FUNCTION refuse_explode()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_explode BEFORE INSERT ON model_parameters "
                "WHEN NEW.parameter_name = 'explode' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    document = registry_export()
    document["models"][0]["display_name"] = "Applied first, then rolled back"
    document["models"][0]["capabilities"]["reasoning"] = {"score": 0.4}
    document["models"][0]["parameters"]["explode"] = {"default": 1}
    entries = LogEntry.objects.count()

    with pytest.raises(DatabaseError, match="refused"):
        registry_apply(document)

    assert RegisteredModel.objects.get(pk=registry.pk).display_name == "GPT-4o mini"
    assert not ModelCapability.objects.filter(model=registry, capability="reasoning").exists()
    assert LogEntry.objects.count() == entries


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("select", "'select' is reserved by the API."),
        ("12345", "A name may not be only digits: /models/{id} would read it as an id."),
        ("org/model/", "Names may not start or end with '/' nor contain '//'."),
        (
            "org/usage",
            "A segment after '/' may not be one of capabilities, parameters, performance, usage, "
            "endpoints, prices, availability: the API's paths use these words.",
        ),
        ("a\u200bb", "Names may not contain whitespace or control characters."),
        ("what?", "Names may not contain '?', '#' or '\\'."),
    ],
)
def test_a_model_name_follows_the_apis_rules(name: str, error: str) -> None:
    document = {
        "version": 1,
        "models": [{"name": name, "display_name": "x", "provider": "custom", "model_type": "chat"}],
    }
    assert invalid(document) == [f"models[0].name: {error}"]


def test_platform_overrides_in_details_are_checked_as_the_api_checks_them() -> None:
    model: dict[str, Any] = {"name": "m", "display_name": "M", "provider": "custom", "model_type": "chat"}
    model["details"] = {"platform": {"task_types": "chat", "colour": ["blue"]}}
    assert invalid({"version": 1, "models": [model]}) == [
        "models[0].details.platform.task_types: A list of words (strings of 1 to 100 characters).",
        "models[0].details.platform.colour: Unknown key: task_types and content_types only.",
    ]


def test_a_document_nested_too_deeply_is_refused_before_it_is_walked() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    document = {"version": 1, "models": [{"name": "m", "details": {"x": deep}}]}
    assert invalid(document) == ["file: nested deeper than 32 levels"]


def test_a_file_cannot_smuggle_a_secret_in(registry: RegisteredModel) -> None:
    document = registry_export()
    endpoint = document["models"][0]["endpoints"][0]
    endpoint["credentials"]["api_key"] = "sk-smuggled"
    endpoint["headers"]["Authorization"] = "Bearer smuggled"
    endpoint["endpoint_url"] = "https://user:pw@api.openai.com/v1"

    errors = invalid(document)

    assert errors == [
        "models[0].endpoints[0].endpoint_url: carries a credential (user info): set it in the console or the API",
        "models[0].endpoints[0].headers.Authorization: a credential header: its value is never read from a file "
        "(list its name under credentials.secret_headers and set it in the console or the API)",
        "models[0].endpoints[0].credentials.api_key: secrets are never read from a file: write 'stored' (keeps the "
        "stored key) or leave it out",
    ]
    assert ModelEndpoint.objects.get(model=registry).api_key == API_KEY


def test_a_yaml_alias_is_refused_before_the_document_is_built() -> None:
    text = "version: 1\nmodels: &a [1]\ncapability_rules: *a\n"
    with pytest.raises(RegistryFileInvalid) as refused:
        registry_file_load(text)
    assert refused.value.errors == ["file: YAML aliases (*name) are not accepted; write each value out"]


@pytest.mark.parametrize("text", ["version: [1\n", '{"version": 1,'])
def test_a_file_that_does_not_parse_is_refused_with_where(text: str) -> None:
    with pytest.raises(RegistryFileInvalid) as refused:
        registry_file_load(text)
    assert refused.value.errors[0].startswith(("file: not valid YAML", "file: not valid JSON"))


def test_unquoted_yaml_timestamps_are_read_as_moments(registry: RegisteredModel) -> None:
    text = registry_file_dump(registry_export(), file_format="yaml").replace(
        "'2026-01-01T00:00:00Z'", "2026-01-01 00:00:00+00:00"
    )
    assert "2026-01-01 00:00:00+00:00" in text
    assert registry_plan(registry_file_load(text)).changes == []


def test_a_confirmation_of_an_older_diff_is_refused_when_the_registry_changed(registry: RegisteredModel) -> None:
    document = registry_export()
    document["models"][0]["display_name"] = "Seen in the diff"
    seen = registry_plan(document).fingerprint
    RegisteredModel.objects.filter(pk=registry.pk).update(display_name="Changed meanwhile")
    ModelParameter.objects.filter(model=registry).update(default_value=0.2)

    with pytest.raises(PlanStale):
        registry_apply(document, confirmed=seen)

    assert RegisteredModel.objects.get(pk=registry.pk).display_name == "Changed meanwhile"


def test_discoverys_endpoints_are_exported_as_managed_and_left_to_discovery_by_apply(
    registry: RegisteredModel,
) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    ModelEndpointFactory(model=registry, endpoint_url="http://gpu-box:11434/api/chat", source=source)
    document = registry_export()
    endpoints = document["models"][0]["endpoints"]
    assert endpoints[1]["managed_by"] == "gpu-box"
    assert "managed_by" not in endpoints[0]

    # Another registry (no such endpoint): not created by hand; the same registry, pruned: not deleted.
    endpoints[1]["endpoint_url"] = "http://staging-gpu:11434/api/chat"
    assert registry_plan(document, prune=True).changes == []
    del endpoints[1]
    assert registry_plan(document, prune=True).changes == []
    assert ModelEndpoint.objects.filter(model=registry).count() == 2


def test_an_endpoint_is_matched_by_type_and_url_and_keeps_its_secrets_when_updated(registry: RegisteredModel) -> None:
    document = registry_export()
    document["models"][0]["endpoints"][0]["headers"] = {"OpenAI-Organization": "org-2"}

    plan = registry_apply(document)

    assert [change.line() for change in plan.changes] == [
        "~ update endpoint gpt-4o-mini: rest endpoint https://api.openai.com/v1"
    ]
    endpoint = ModelEndpoint.objects.get(model=registry)
    assert endpoint.headers == {"OpenAI-Organization": "org-2"}
    assert endpoint.api_key == API_KEY
    # The credential the admin's form had stored in clear moved to the encrypted side, not lost.
    assert endpoint.secret_headers == {"Authorization": BEARER, "X-Api-Key": CLEAR_SECRET}
    assert json.dumps(plan.changes[0].fields, default=str).count(CLEAR_SECRET) == 0


def test_export_and_a_no_change_plan_cost_the_same_queries_for_3_models_or_60(
    django_assert_max_num_queries: Any,
) -> None:
    for index in range(60):
        model = RegisteredModelFactory(name=f"bulk-{index:02d}")
        ModelCapabilityFactory(model=model, capability="text")
        ModelParameterFactory(model=model)
        ModelEndpointFactory(model=model, api_key="sk-x")
        ModelPrice.objects.create(
            model=model, input_per_mtok=1, output_per_mtok=2, effective_from=datetime(2026, 1, 1, tzinfo=UTC)
        )
    with django_assert_max_num_queries(6):
        document = registry_export()
    with django_assert_max_num_queries(6):
        assert registry_plan(document).changes == []


def test_what_a_file_set_survives_the_next_discovery(fake_ollama: FakeOllama, settings: Any) -> None:
    settings.OLLAMA_URL = None
    source = ProviderSourceFactory(name="gpu-box", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    with system_actor("discovery"):
        assert source_sync(source=source, trigger="schedule").status == RunStatus.SUCCEEDED
    document = registry_export()
    entry = next(model for model in document["models"] if model["name"] == "qwen2.5-coder:1.5b")
    entry["display_name"] = "Qwen Coder (ours)"
    entry["context_window"] = 8192
    entry["capabilities"]["code"]["score"] = 0.93
    registry_apply(document)

    with system_actor("discovery"):
        assert source_sync(source=source, trigger="schedule").status == RunStatus.SUCCEEDED

    model = RegisteredModel.objects.get(name="qwen2.5-coder:1.5b")
    assert (model.display_name, model.context_window) == ("Qwen Coder (ours)", 8192)
    assert ModelCapability.objects.get(model=model, capability="code").capability_score == 0.93
    assert registry_plan(document).changes == []
