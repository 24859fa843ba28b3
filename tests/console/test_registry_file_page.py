"""The registry as a file in the browser: export, edit, upload, the diff (a dry run), apply, a no-op second apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from registry.access.roles import Role, permissions_for
from registry.models import ModelCapability, ModelEndpoint, ModelPrice, RegisteredModel
from tests.console.conftest import Console
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "sk-browser-never-shown"


@pytest.fixture
def editor(transactional_db: None) -> Any:
    # A transactional test flushes the migration's groups (permissions come back with post_migrate).
    group, _ = Group.objects.get_or_create(name=Role.EDITOR.group_name)
    wanted = set(permissions_for(Role.EDITOR))
    group.permissions.set(
        [
            perm
            for perm in Permission.objects.select_related("content_type")
            if f"{perm.content_type.app_label}.{perm.codename}" in wanted
        ]
    )
    user = UserFactory(username="editor-op", is_staff=True)
    user.groups.add(group)
    return user


@pytest.fixture
def staging() -> RegisteredModel:
    model = RegisteredModelFactory(name="qwen2.5-coder:7b", display_name="Qwen 2.5 Coder 7B", context_window=32_768)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.7, evidence="operator")
    ModelEndpointFactory(model=model, endpoint_url="http://gpu-box:11434/api/chat", api_key=SECRET)
    RegisteredModelFactory(name="llama3:8b", display_name="Llama 3 8B")
    return model


def test_export_edit_upload_diff_apply_then_a_second_apply_changes_nothing(
    console: Console, editor: Any, staging: RegisteredModel, tmp_path: Path
) -> None:
    page = console.page
    console.login("editor-op")
    console.open("/admin/registry/registeredmodel/")
    with page.expect_download() as download_info:
        page.click("#export-yaml")
    text = download_info.value.path().read_text(encoding="utf-8")
    assert SECRET not in text
    assert download_info.value.suggested_filename.endswith(".yaml")

    # The operator edits the file: a score, a display name, a new price and a new model.
    document = yaml.safe_load(text)
    qwen = next(model for model in document["models"] if model["name"] == "qwen2.5-coder:7b")
    qwen["capabilities"]["code"]["score"] = 0.85
    qwen["display_name"] = "Qwen 2.5 Coder 7B (Q4)"
    qwen["prices"] = [{"effective_from": "2026-12-01T00:00:00Z", "input_per_mtok": "0", "output_per_mtok": "0"}]
    document["models"].append(
        {"name": "gpt-4o-mini", "display_name": "GPT-4o mini", "provider": "openai", "model_type": "chat"}
    )
    edited = tmp_path / "registry.yaml"
    edited.write_text(yaml.safe_dump(document, sort_keys=False))

    page.click("#apply-file")
    console.remember()
    page.set_input_files("#id_file", str(edited))
    page.click("#upload-form input[type=submit]")
    console.remember()

    diff = page.locator("#registry-diff")
    expect(diff.locator("h2")).to_have_text("Diff: 2 to create, 2 to update, 0 to delete")
    expect(diff).to_contain_text("Qwen 2.5 Coder 7B (Q4)")
    expect(diff).to_contain_text("qwen2.5-coder:7b: code")
    expect(diff).to_contain_text("qwen2.5-coder:7b: from 2026-12-01T00:00:00Z")
    assert console.page_width() <= 1366
    console.screenshot("diff")
    # The diff is a dry run: nothing changed yet.
    assert RegisteredModel.objects.get(pk=staging.pk).display_name == "Qwen 2.5 Coder 7B"
    assert not RegisteredModel.objects.filter(name="gpt-4o-mini").exists()

    page.click("#confirm-form input[type=submit]")
    console.remember()
    expect(page.locator("#registry-diff h2")).to_have_text("Applied: 4 changes")
    expect(page.locator(".messagelist .success")).to_have_text("Applied 4 changes.")
    staging.refresh_from_db()
    assert staging.display_name == "Qwen 2.5 Coder 7B (Q4)"
    assert ModelCapability.objects.get(model=staging, capability="code").capability_score == 0.85
    assert ModelPrice.objects.filter(model=staging).count() == 1
    assert RegisteredModel.objects.filter(name="gpt-4o-mini").exists()
    assert ModelEndpoint.objects.get(model=staging).api_key == SECRET
    console.screenshot("applied")

    page.set_input_files("#id_file", str(edited))
    page.click("#upload-form input[type=submit]")
    console.remember()
    expect(page.locator("#no-changes")).to_have_text("No changes: the registry already matches the file.")
    expect(page.locator("#confirm-form")).to_have_count(0)
    assert all(SECRET not in html for html in console.seen)
