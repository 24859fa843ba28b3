"""The console's registry file: Export for viewers, Apply a file (upload → diff → confirm) for editors."""

from __future__ import annotations

import html
import re
from io import BytesIO

import pytest
import yaml
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from registry.models import ModelCapability, RegisteredModel
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

EXPORT = reverse("admin:registry_file_export")
APPLY = reverse("admin:registry_file_apply")


@pytest.fixture
def model() -> RegisteredModel:
    model = RegisteredModelFactory(name="gpt-4o-mini", display_name="GPT-4o mini")
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.7, evidence="operator")
    ModelEndpointFactory(model=model, api_key="sk-console-secret")
    return model


def exported(client: Client, file_format: str = "yaml") -> str:
    response = client.get(EXPORT, {"format": file_format})
    assert response.status_code == 200
    return response.content.decode()


def upload(client: Client, text: str, *, prune: bool = False) -> str:
    file = BytesIO(text.encode())
    file.name = "registry.yaml"
    data: dict[str, object] = {"file": file}
    if prune:
        data["prune"] = "on"
    response = client.post(APPLY, data)
    assert response.status_code == 200
    return response.content.decode()


def confirm_fields(page: str) -> dict[str, str]:
    """The confirm form's hidden fields, as the browser would post them back."""
    fields = dict(re.findall(r'<input type="hidden" name="(text|prune|fingerprint)" value="([^"]*)"', page))
    return {name: html.unescape(value) for name, value in fields.items()}


def test_a_viewer_exports_yaml_or_json_without_any_secret(staff: dict[str, Client], model: RegisteredModel) -> None:
    response = staff["viewer"].get(EXPORT, {"format": "json"})
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="registry-')
    text = response.content.decode()
    assert '"api_key": "stored"' in text
    assert "sk-console-secret" not in text
    assert yaml.safe_load(exported(staff["viewer"]))["models"][0]["name"] == "gpt-4o-mini"


def test_an_export_of_an_unknown_format_or_provider_is_refused_naming_the_parameter(staff: dict[str, Client]) -> None:
    response = staff["viewer"].get(EXPORT, {"format": "xml"})
    assert (response.status_code, response.content) == (400, b"format: must be one of yaml, json")
    response = staff["viewer"].get(EXPORT, {"provider": "openia"})
    assert response.status_code == 400
    assert response.content.decode() == "provider: openia is not one of openai, anthropic, ollama, custom"


def test_an_export_by_provider_is_named_after_it(staff: dict[str, Client], model: RegisteredModel) -> None:
    response = staff["viewer"].get(EXPORT, {"provider": "openai"})
    assert response["Content-Disposition"].startswith('attachment; filename="registry-openai-')
    assert yaml.safe_load(response.content)["models"] == []


def test_the_model_list_offers_export_and_to_editors_apply(staff: dict[str, Client], model: RegisteredModel) -> None:
    models_url = reverse("admin:registry_registeredmodel_changelist")
    viewer_page = staff["viewer"].get(models_url).content.decode()
    editor_page = staff["editor"].get(models_url).content.decode()
    assert 'id="export-yaml"' in viewer_page
    assert 'id="apply-file"' not in viewer_page
    assert 'id="apply-file"' in editor_page


def test_a_viewer_may_not_apply(staff: dict[str, Client]) -> None:
    assert staff["viewer"].get(APPLY).status_code == 403


def test_upload_shows_the_diff_and_changes_nothing_until_confirmed_by_the_operator(
    staff: dict[str, Client], model: RegisteredModel
) -> None:
    editor = staff["editor"]
    text = exported(editor).replace("score: 0.7", "score: 0.95")

    page = upload(editor, text)

    assert "Diff: 0 to create, 1 to update, 0 to delete" in page
    assert "gpt-4o-mini: code" in page
    assert "0.95" in page
    assert ModelCapability.objects.get(model=model).capability_score == 0.7

    response = editor.post(APPLY, confirm_fields(page))
    assert "Applied: 1 change" in response.content.decode()
    row = ModelCapability.objects.get(model=model)
    assert row.capability_score == 0.95
    assert LogEntry.objects.get_for_object(row).latest("pk").actor.username == "editor"

    assert "No changes: the registry already matches the file." in upload(editor, text)


def test_a_refused_file_lists_its_errors_and_offers_no_confirmation(
    staff: dict[str, Client], model: RegisteredModel
) -> None:
    page = upload(staff["editor"], exported(staff["editor"]).replace("score: 0.7", "score: 7"))
    assert "The file was refused as a whole: nothing was applied (1 error)" in page
    assert "models[0].capabilities.code.score: must be between 0 and 1" in page
    assert 'id="confirm-form"' not in page


def test_a_confirmation_after_the_registry_changed_shows_the_new_diff_instead(
    staff: dict[str, Client], model: RegisteredModel
) -> None:
    editor = staff["editor"]
    page = upload(editor, exported(editor).replace("score: 0.7", "score: 0.95"))
    RegisteredModel.objects.filter(pk=model.pk).update(display_name="Renamed meanwhile")

    response = editor.post(APPLY, confirm_fields(page)).content.decode()

    assert "The registry changed since the diff was shown" in response
    assert ModelCapability.objects.get(model=model).capability_score == 0.7
    assert "Renamed meanwhile" in response  # the new diff puts it back


def test_a_prune_that_deletes_a_model_needs_the_admins_permission(
    staff: dict[str, Client], model: RegisteredModel
) -> None:
    text = exported(staff["editor"])
    RegisteredModelFactory(name="stray")

    page = upload(staff["editor"], text, prune=True)

    assert "it needs registry.delete_registeredmodel. Nothing was applied." in page
    assert 'id="confirm-form"' not in page
    page = upload(staff["admin"], text, prune=True)
    assert "delete model" in page
    assert 'id="confirm-form"' in page
    staff["admin"].post(APPLY, confirm_fields(page))
    assert not RegisteredModel.objects.filter(name="stray").exists()
