"""The model page: secrets write-only, operator edits kept from discovery, the API's validation, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from discovery.models import ProviderSource, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.catalog.prices import price_set
from registry.models import ModelEndpoint, ModelRuntime, ModelStatus, RegisteredModel, SetBy
from tests.admin_forms import RenderedForm, rendered_form
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

FORM = "registeredmodel_form"
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def change_url(model: RegisteredModel) -> str:
    return reverse("admin:registry_registeredmodel_change", args=[model.pk])


def model_form(client: Client, model: RegisteredModel) -> RenderedForm:
    return rendered_form(client, change_url(model), FORM)


def inline_index(form: RenderedForm, prefix: str, field: str, value: str) -> int:
    """The row number of an inline whose ``field`` shows ``value``."""
    for name, shown in form.data.items():
        if name.startswith(f"{prefix}-") and name.endswith(f"-{field}") and shown == value:
            return int(name.split("-")[1])
    raise AssertionError(f"no {prefix} row with {field}={value!r}")


@pytest.fixture
def discovered(fake_ollama: FakeOllama, settings: Any) -> tuple[ProviderSource, RegisteredModel]:
    """A source on a fake Ollama, discovered once; one of its models with discovery's rows."""
    settings.OLLAMA_URL = None
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    discover(source)
    model = (
        RegisteredModel.objects.filter(source=source, capabilities__isnull=False, parameters__isnull=False)
        .distinct()
        .order_by("name")
        .first()
    )
    assert model is not None
    return source, model


def discover(source: ProviderSource) -> None:
    with system_actor("discovery"):
        run = source_sync(source=source, trigger="manual")
    assert run.status == "succeeded", run.error_message


# --- Defect 1: the endpoint's secret inputs --------------------------------------------------------


def test_the_endpoint_inline_renders_write_only_credentials_for_admins(staff: dict[str, Client]) -> None:
    endpoint = ModelEndpointFactory(api_key="sk-endpoint-stored", secret_headers={"Authorization": "Bearer tok-9"})

    page = staff["admin"].get(change_url(endpoint.model)).content.decode()

    assert 'type="password" name="endpoints-0-api_key"' in page
    assert 'name="endpoints-0-clear_api_key"' in page
    assert "sk-endpoint-stored" not in page
    assert "tok-9" not in page
    assert "API key, Authorization (hidden)" in page


def test_an_admin_sets_and_keeps_an_endpoint_key_through_the_rendered_form(staff: dict[str, Client]) -> None:
    endpoint = ModelEndpointFactory(model=RegisteredModelFactory(name="hand-made"))
    form = model_form(staff["admin"], endpoint.model).set("endpoints-0-api_key", "sk-new-endpoint-key")

    response = staff["admin"].post(change_url(endpoint.model), form.data)

    assert response.status_code == 302, response.content.decode()[:3000]
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-new-endpoint-key"
    # Saved again with the box empty: the key stays.
    staff["admin"].post(change_url(endpoint.model), model_form(staff["admin"], endpoint.model).data)
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-new-endpoint-key"
    assert "sk-new-endpoint-key" not in staff["admin"].get(change_url(endpoint.model)).content.decode()


def test_an_editor_gets_no_secret_inputs_and_a_forged_one_is_ignored(staff: dict[str, Client]) -> None:
    endpoint = ModelEndpointFactory(api_key="sk-admins-key")
    form = model_form(staff["editor"], endpoint.model)

    assert "endpoints-0-api_key" not in form.names
    data = {**form.data, "endpoints-0-api_key": "sk-editor-forged", "endpoints-0-clear_api_key": "on"}
    response = staff["editor"].post(change_url(endpoint.model), data)

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-admins-key"


def test_an_editor_cannot_type_a_credential_into_plain_headers(staff: dict[str, Client]) -> None:
    endpoint = ModelEndpointFactory()
    form = model_form(staff["editor"], endpoint.model).set("endpoints-0-headers", '{"Authorization": "Bearer x"}')

    response = staff["editor"].post(change_url(endpoint.model), form.data)

    assert response.status_code == 200
    assert "Only an admin may set credentials (Authorization)." in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret_headers is None


# --- Defect 2: what an operator changes stays the operator's ---------------------------------------


def test_a_changed_discovered_score_becomes_the_operators_and_survives_discovery(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    source, model = discovered
    capability = model.capabilities.filter(set_by=SetBy.DISCOVERY).first()
    assert capability is not None
    form = model_form(staff["editor"], model)
    row = inline_index(form, "capabilities", "capability", capability.capability)
    form.set(f"capabilities-{row}-capability_score", "0.11")

    response = staff["editor"].post(change_url(model), form.data)

    assert response.status_code == 302, response.content.decode()[:3000]
    capability.refresh_from_db()
    assert (capability.capability_score, capability.set_by) == (0.11, SetBy.OPERATOR)
    discover(source)
    capability.refresh_from_db()
    assert (capability.capability_score, capability.set_by) == (0.11, SetBy.OPERATOR)
    page = staff["editor"].get(change_url(model)).content.decode()
    assert 'class="owner owner-operator"' in page


def test_a_changed_discovered_parameter_survives_discovery(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    source, model = discovered
    parameter = model.parameters.filter(set_by=SetBy.DISCOVERY).first()
    assert parameter is not None
    form = model_form(staff["editor"], model)
    row = inline_index(form, "parameters", "parameter_name", parameter.parameter_name)
    form.set(f"parameters-{row}-description", "tuned by the platform team")

    staff["editor"].post(change_url(model), form.data)
    discover(source)

    parameter.refresh_from_db()
    assert (parameter.description, parameter.set_by) == ("tuned by the platform team", SetBy.OPERATOR)


def test_a_score_handed_back_to_discovery_gets_the_providers_value_again(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    source, model = discovered
    capability = model.capabilities.filter(set_by=SetBy.DISCOVERY).first()
    assert capability is not None
    provider_score = capability.capability_score
    form = model_form(staff["editor"], model)
    row = inline_index(form, "capabilities", "capability", capability.capability)
    staff["editor"].post(change_url(model), form.set(f"capabilities-{row}-capability_score", "0.01").data)

    form = model_form(staff["editor"], model)
    staff["editor"].post(change_url(model), form.set(f"capabilities-{row}-return_to_discovery", True).data)
    capability.refresh_from_db()
    assert capability.set_by == SetBy.DISCOVERY
    discover(source)

    capability.refresh_from_db()
    assert (capability.capability_score, capability.set_by) == (provider_score, SetBy.DISCOVERY)


def test_a_model_field_an_operator_changed_is_kept_from_discovery_until_handed_back(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    source, model = discovered
    provider_name = model.display_name
    staff["editor"].post(change_url(model), model_form(staff["editor"], model).set("display_name", "Team's pick").data)
    discover(source)
    model.refresh_from_db()
    assert (model.display_name, model.operator_fields) == ("Team's pick", ["display_name"])
    page = staff["editor"].get(change_url(model)).content.decode()
    assert "Set by an operator (discovery leaves them): display name." in page

    form = model_form(staff["editor"], model).set("return_to_discovery", "display_name")
    staff["editor"].post(change_url(model), form.data)
    discover(source)

    model.refresh_from_db()
    assert (model.display_name, model.operator_fields) == (provider_name, [])


def test_a_model_marked_unavailable_by_hand_stays_so_through_discovery(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    source, model = discovered
    changelist = reverse("admin:registry_registeredmodel_changelist")

    staff["editor"].post(changelist, {"action": "mark_unavailable", "_selected_action": [model.pk]})
    discover(source)

    model.refresh_from_db()
    assert model.status == ModelStatus.UNAVAILABLE
    staff["editor"].post(changelist, {"action": "mark_available", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert (model.status, model.operator_fields) == (ModelStatus.AVAILABLE, [])


def test_discovery_managed_endpoint_addresses_are_read_only(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    _, model = discovered
    endpoint = model.endpoints.get()
    url = endpoint.endpoint_url
    form = model_form(staff["admin"], model)

    assert "endpoints-0-endpoint_url" not in form.data  # rendered disabled, so not submitted
    staff["admin"].post(change_url(model), {**form.data, "endpoints-0-endpoint_url": "http://elsewhere:1/"})
    endpoint.refresh_from_db()
    assert endpoint.endpoint_url == url


# --- Defect 3: the API's validation, as sentences next to the fields ------------------------------


def test_a_parameter_range_the_api_refuses_is_refused_next_to_its_field(staff: dict[str, Client]) -> None:
    parameter = ModelParameterFactory(parameter_name="top_k", default_value=5, min_value=0, max_value=100)
    form = model_form(staff["editor"], parameter.model)
    form.set("parameters-0-min_value", "10").set("parameters-0-max_value", "1")

    response = staff["editor"].post(change_url(parameter.model), form.data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Must not be greater than max_value." in page
    parameter.refresh_from_db()
    assert (parameter.min_value, parameter.max_value) == (0, 100)


def test_a_score_out_of_range_says_so_without_naming_the_constraint(staff: dict[str, Client]) -> None:
    capability = ModelCapabilityFactory(capability="code", capability_score=0.5)
    form = model_form(staff["editor"], capability.model).set("capabilities-0-capability_score", "1.5")

    response = staff["editor"].post(change_url(capability.model), form.data)

    page = response.content.decode()
    assert "Ensure this value is less than or equal to 1.0." in page
    assert "model_capabilities_score_between_0_and_1" not in page
    capability.refresh_from_db()
    assert capability.capability_score == 0.5


def test_a_model_name_the_api_refuses_is_refused_in_the_admin(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="fine-name")

    response = staff["editor"].post(change_url(model), model_form(staff["editor"], model).set("name", "12345").data)

    assert "A name may not be only digits" in response.content.decode()
    model.refresh_from_db()
    assert model.name == "fine-name"


def test_an_empty_optional_json_value_is_empty_not_null(staff: dict[str, Client]) -> None:
    parameter = ModelParameterFactory(parameter_name="seed", default_value=0, min_value=None, max_value=None)

    form = model_form(staff["editor"], parameter.model)

    assert form.data["parameters-0-min_value"] == ""
    assert form.data["parameters-0-max_value"] == ""


# --- Roles, audit, list ----------------------------------------------------------------------------


def test_a_viewer_sees_no_save_button_and_a_forged_post_is_refused(staff: dict[str, Client]) -> None:
    capability = ModelCapabilityFactory(capability_score=0.4)
    page = staff["viewer"].get(change_url(capability.model)).content.decode()

    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
    response = staff["viewer"].post(change_url(capability.model), {"name": "stolen"})
    assert response.status_code == 403
    assert staff["viewer"].post(reverse("admin:registry_registeredmodel_add"), {}).status_code == 403


def test_a_capability_change_in_the_admin_is_audited_under_its_models_name(staff: dict[str, Client]) -> None:
    capability = ModelCapabilityFactory(model=RegisteredModelFactory(name="gpt-4o"), capability="code")
    form = model_form(staff["editor"], capability.model).set("capabilities-0-capability_score", "0.3")

    staff["editor"].post(change_url(capability.model), form.data)

    entry = LogEntry.objects.get_for_object(capability).latest("timestamp")
    assert entry.object_repr == "gpt-4o: code"
    history = staff["admin"].get(reverse("admin:auditlog_logentry_changelist") + f"?model={capability.model_id}")
    assert "gpt-4o: code" in history.content.decode()


def test_the_model_list_filters_by_capability_and_costs_the_same_queries_for_more_rows(
    staff: dict[str, Client],
) -> None:
    url = reverse("admin:registry_registeredmodel_changelist")

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff["viewer"].get(url).status_code == 200
        return len(queries)

    for index in range(3):
        ModelCapabilityFactory(model=RegisteredModelFactory(name=f"few-{index}"), capability="code")
    few = queries_for_page()
    for index in range(30):
        ModelCapabilityFactory(
            model=RegisteredModelFactory(name=f"many-{index}"), capability="vision", capability_score=0.2
        )
    assert queries_for_page() == few

    page = staff["viewer"].get(url + "?capability=code").content.decode()
    assert "few-0" in page
    assert "many-0" not in page


def test_the_model_list_exports_its_filtered_rows_as_csv(staff: dict[str, Client]) -> None:
    RegisteredModelFactory(name="=cmd|calc", provider="openai")
    RegisteredModelFactory(name="llama3.2:latest", provider="ollama")
    url = reverse("admin:registry_registeredmodel_export")

    response = staff["viewer"].get(url + "?provider__exact=openai")

    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    lines = body.strip().splitlines()
    assert lines[0].startswith("name,display_name,provider,model_type,status,source")
    assert len(lines) == 2
    assert lines[1].startswith("'=cmd|calc,")  # a spreadsheet does not run it as a formula
    assert response["Content-Type"].startswith("text/csv")


def test_a_secret_never_reaches_a_viewers_page(staff: dict[str, Client]) -> None:
    endpoint = ModelEndpointFactory(api_key="sk-hidden-from-viewers", secret_headers={"X-Api-Key": "hdr-secret"})

    page = staff["viewer"].get(change_url(endpoint.model)).content.decode()

    assert "sk-hidden-from-viewers" not in page
    assert "hdr-secret" not in page
    assert ModelEndpoint.objects.get().api_key == "sk-hidden-from-viewers"


def test_the_history_links_show_what_each_role_may_open(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory()

    editor = staff["editor"].get(change_url(model)).content.decode()
    admin_page = staff["admin"].get(change_url(model)).content.decode()

    assert f"?model__id__exact={model.pk}" in editor
    assert "audit history" not in editor  # the audit log is the admins'
    assert f'href="/admin/auditlog/logentry/?model={model.pk}">audit history' in admin_page


def test_a_models_page_costs_the_same_queries_for_more_inline_rows(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory()
    few, many = RegisteredModelFactory(source=source), RegisteredModelFactory(source=source)
    for model, count in ((few, 2), (many, 12)):
        for index in range(count):
            ModelCapabilityFactory(model=model, capability=f"cap-{index}", set_by=SetBy.OPERATOR)
            ModelParameterFactory(model=model, parameter_name=f"param_{index}")
            ModelEndpointFactory(model=model)
            ModelRuntime.objects.create(model=model, source=ProviderSourceFactory(), loaded=True, checked_at=NOW)

    def queries(model: RegisteredModel) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff["admin"].get(change_url(model)).status_code == 200
        return len(captured)

    assert queries(many) == queries(few)


def test_a_hand_registered_model_changed_by_an_operator_still_opens(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="hand-made", source=None)
    staff["editor"].post(change_url(model), model_form(staff["editor"], model).set("display_name", "Renamed").data)
    model.refresh_from_db()
    assert model.operator_fields == ["display_name"]

    for role in ("editor", "viewer"):
        page = staff[role].get(change_url(model))
        assert page.status_code == 200
        assert "Hand back to discovery" not in page.content.decode()  # nothing discovers it


def test_a_models_page_shows_its_runtime_per_host_read_only(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory()
    ModelRuntime.objects.create(
        model=model,
        source=ProviderSourceFactory(name="gpu-a"),
        loaded=True,
        size_vram=3 * 2**30,
        context_length=8192,
        expires_at=NOW + timedelta(minutes=5),
        checked_at=NOW,
    )
    ModelRuntime.objects.create(model=model, source=ProviderSourceFactory(name="gpu-b"), loaded=False, checked_at=NOW)

    page = staff["editor"].get(change_url(model)).content.decode()

    table = page[page.index('<table id="model-runtime">') :]
    table = table[: table.index("</table>")]
    assert table.index("gpu-a") < table.index("gpu-b")
    assert "3.0\xa0GB" in table
    assert "<td>8192</td>" in table
    assert "2026-12-02 06:05:00" in table
    assert 'class="status status-available">loaded' in table
    assert 'class="status status-unavailable">not loaded' in table
    assert "runtimes-" not in page  # nothing to edit, no formset to post


def test_a_model_no_host_was_asked_about_says_so(staff: dict[str, Client]) -> None:
    page = staff["viewer"].get(change_url(RegisteredModelFactory())).content.decode()

    assert "No Ollama host was asked about this model yet" in page


def test_saving_a_models_page_without_a_change_audits_nothing(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="untouched", description=None)
    ModelParameterFactory(model=model, parameter_name="seed", description=None)
    form = model_form(staff["editor"], model)
    before = LogEntry.objects.count()

    response = staff["editor"].post(change_url(model), form.data)

    assert response.status_code == 302, response.content.decode()[:2000]
    model.refresh_from_db()
    assert model.description is None
    assert model.parameters.get().description is None
    assert [entry.changes for entry in LogEntry.objects.order_by("id")[before:]] == []


def test_a_models_history_lists_its_prices_and_endpoints_whoever_wrote_them(
    staff: dict[str, Client], discovered: tuple[ProviderSource, RegisteredModel]
) -> None:
    _, model = discovered
    price, _ = price_set(model=model, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"), effective_from=NOW)
    # An endpoint written without its model loaded: its entry is named "model <id>: ...".
    with system_actor("import"):
        ModelEndpoint.objects.create(model_id=model.pk, endpoint_type="custom", endpoint_url="https://x.example/v1")
    discovered_endpoint = model.endpoints.get(source__isnull=False)
    other = RegisteredModelFactory(name=f"{model.name}-other")
    price_set(model=other, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"), effective_from=NOW)

    history = staff["admin"].get(reverse("admin:auditlog_logentry_changelist") + f"?model={model.pk}")

    page = history.content.decode()
    assert str(price) in page
    assert str(discovered_endpoint) in page
    assert f"model {model.pk}: custom endpoint" in page
    assert f"{other.name}: from" not in page


def test_an_operator_writes_a_note_with_a_score_and_it_is_stored_as_its_evidence_and_audited(
    staff: dict[str, Client],
) -> None:
    """Issue 23, item 6e: an operator could not say why they set a score."""
    capability = ModelCapabilityFactory(
        model=RegisteredModelFactory(name="gpt-4o"), capability="code", set_by=SetBy.DISCOVERY, evidence="catalog"
    )
    form = model_form(staff["editor"], capability.model)
    assert form.data["capabilities-0-note"] == ""  # discovery's evidence is not the operator's note
    form.set("capabilities-0-capability_score", "0.4").set("capabilities-0-note", "fails our Rust suite (run 212)")

    assert staff["editor"].post(change_url(capability.model), form.data).status_code == 302

    capability.refresh_from_db()
    assert (capability.capability_score, capability.set_by) == (0.4, SetBy.OPERATOR)
    assert capability.evidence == "fails our Rust suite (run 212)"
    entry = LogEntry.objects.get_for_object(capability).latest("timestamp")
    assert entry.changes_dict["evidence"] == ["catalog", "fails our Rust suite (run 212)"]
    assert entry.actor is not None
    assert entry.actor.username == "editor"
    page = staff["viewer"].get(change_url(capability.model)).content.decode()
    assert "fails our Rust suite (run 212)" in page
    # Shown again in the box, and a note alone (the score unchanged) is a change too.
    form = model_form(staff["editor"], capability.model)
    assert form.data["capabilities-0-note"] == "fails our Rust suite (run 212)"
    staff["editor"].post(change_url(capability.model), form.set("capabilities-0-note", "passes since run 230").data)
    capability.refresh_from_db()
    assert capability.evidence == "passes since run 230"


def test_a_note_longer_than_the_api_accepts_is_refused_next_to_its_field(staff: dict[str, Client]) -> None:
    capability = ModelCapabilityFactory(capability="code")
    form = model_form(staff["editor"], capability.model).set("capabilities-0-note", "x" * 301)
    response = staff["editor"].post(change_url(capability.model), form.data)
    assert response.status_code == 200
    assert "Ensure this value has at most 300 characters" in response.content.decode()
