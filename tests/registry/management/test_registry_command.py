"""``manage.py registry export|apply``: the file written, the diff printed, audited as the command."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from auditlog.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError

from registry.models import ModelCapability, RegisteredModel
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def model() -> RegisteredModel:
    model = RegisteredModelFactory(name="qwen2.5-coder:7b", display_name="Qwen 2.5 Coder 7B")
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.8, evidence="operator")
    ModelEndpointFactory(model=model, api_key="sk-never-printed")
    return model


def run(*args: str) -> str:
    out = StringIO()
    call_command("registry", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_export_writes_yaml_to_stdout_and_json_by_the_output_suffix(model: RegisteredModel, tmp_path: Path) -> None:
    document = yaml.safe_load(run("export"))
    assert [entry["name"] for entry in document["models"]] == ["qwen2.5-coder:7b"]

    run("export", "--output", str(tmp_path / "registry.json"))
    text = (tmp_path / "registry.json").read_text()
    assert json.loads(text)["models"][0]["endpoints"][0]["credentials"] == {"api_key": "stored"}
    assert "sk-never-printed" not in text


def test_apply_prints_the_diff_applies_it_audited_as_the_command_then_a_rerun_is_a_no_op(
    model: RegisteredModel, tmp_path: Path
) -> None:
    path = tmp_path / "registry.yaml"
    run("export", "--output", str(path))
    path.write_text(path.read_text().replace("score: 0.8", "score: 0.9"))

    dry = run("apply", str(path), "--dry-run")
    assert dry.splitlines() == [
        "~ update capability qwen2.5-coder:7b: code",
        "    score: 0.8 -> 0.9",
        "0 to create, 1 to update, 0 to delete.",
        "Dry run: nothing applied.",
    ]
    assert ModelCapability.objects.get(model=model).capability_score == 0.8

    applied = run("apply", str(path))
    assert applied.splitlines()[-1] == "Applied 1 changes."
    assert ModelCapability.objects.get(model=model).capability_score == 0.9
    entry = LogEntry.objects.get_for_object(ModelCapability.objects.get(model=model)).latest("pk")
    assert entry.actor_email == "system:registry-apply"
    assert entry.changes["capability_score"] == [0.8, 0.9]

    assert run("apply", str(path)).splitlines() == ["No changes: the registry already matches the file."]


def test_apply_refuses_a_bad_file_listing_every_error_and_applies_nothing(
    model: RegisteredModel, tmp_path: Path
) -> None:
    path = tmp_path / "registry.yaml"
    run("export", "--output", str(path))
    text = path.read_text().replace("score: 0.8", "score: high").replace("display_name: Qwen", "display_name: New")
    path.write_text(text)

    with pytest.raises(CommandError) as refused:
        run("apply", str(path))

    assert str(refused.value).splitlines() == [
        f"{path} refused, nothing applied (1 errors):",
        "  models[0].capabilities.code.score: must be a number, not text",
    ]
    assert RegisteredModel.objects.get(pk=model.pk).display_name == "Qwen 2.5 Coder 7B"


def test_apply_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        run("apply", str(tmp_path / "absent.yaml"))
