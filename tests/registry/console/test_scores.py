"""The console and capability evidence: each score's evidence beside it, operators' edits, the metric rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from registry.models import CapabilityMetric, EvidenceSource, ModelCapability, RegisteredModel, SetBy
from tests.admin_forms import rendered_form
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def change_url(model: RegisteredModel) -> str:
    return reverse("admin:registry_registeredmodel_change", args=[model.pk])


@pytest.fixture
def measured() -> ModelCapability:
    return ModelCapabilityFactory(
        model=RegisteredModelFactory(name="coder"),
        capability="code",
        capability_score=0.81,
        set_by=SetBy.DISCOVERY,
        evidence_source=EvidenceSource.MEASURED,
        evidence="sample-weighted mean of success_rate on coding over 30 days",
        metric_name="success_rate",
        task_category="coding",
        sample_size=1240,
        window_start=datetime(2026, 11, 1, tzinfo=UTC),
        window_end=datetime(2026, 11, 30, tzinfo=UTC),
        evaluated_at=datetime(2026, 12, 1, 6, tzinfo=UTC),
    )


def test_the_model_page_shows_each_scores_evidence_beside_it(
    staff: dict[str, Client], measured: ModelCapability
) -> None:
    page = staff["viewer"].get(change_url(measured.model)).content.decode()
    assert "measured · n=1,240 · 2026-11-01 → 2026-11-30 · evaluated 2026-12-01 06:00 · success_rate (coding)" in page
    assert 'class="owner owner-discovery" title="derived from performance">measured<' in page


def test_an_operators_edit_makes_the_score_the_operators_with_operator_evidence(
    staff: dict[str, Client], measured: ModelCapability
) -> None:
    form = rendered_form(staff["editor"], change_url(measured.model), "registeredmodel_form")
    form.set("capabilities-0-capability_score", "0.6")
    response = staff["editor"].post(change_url(measured.model), form.data)
    assert response.status_code == 302, response.content.decode()[:2000]
    measured.refresh_from_db()
    assert (measured.capability_score, measured.set_by, measured.evidence_source) == (
        0.6,
        SetBy.OPERATOR,
        EvidenceSource.OPERATOR,
    )
    assert (measured.metric_name, measured.sample_size, measured.window_start) == (None, None, None)
    assert measured.evaluated_at is not None
    page = staff["editor"].get(change_url(measured.model)).content.decode()
    assert "operator · evaluated" in page


def test_an_editor_adds_a_capability_metric_rule(staff: dict[str, Client]) -> None:
    url = reverse("admin:registry_capabilitymetric_add")
    form = rendered_form(staff["editor"], url, "capabilitymetric_form")
    assert (form.data["window_days"], form.data["min_samples"], form.data["stale_after_days"]) == ("30", "50", "7")
    form.set("capability", "code").set("metric_name", "success_rate").set("task_category", "coding")
    response = staff["editor"].post(url, form.data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = CapabilityMetric.objects.get()
    assert (rule.capability, rule.metric_name, rule.task_category, rule.window_days, rule.enabled) == (
        "code",
        "success_rate",
        "coding",
        30,
        True,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capability", "Code Review"),
        ("metric_name", "   "),
        ("window_days", "0"),
        ("window_days", "99999"),
        ("min_samples", "0"),
        ("stale_after_days", "0"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(staff: dict[str, Client], field: str, value: str) -> None:
    url = reverse("admin:registry_capabilitymetric_add")
    form = rendered_form(staff["editor"], url, "capabilitymetric_form")
    form.set("capability", "code").set("metric_name", "success_rate").set(field, value)
    response = staff["editor"].post(url, form.data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not CapabilityMetric.objects.exists()


def test_a_viewer_sees_the_rules_but_cannot_change_them(staff: dict[str, Client]) -> None:
    rule = CapabilityMetric.objects.create(capability="code", metric_name="success_rate")
    assert staff["viewer"].get(reverse("admin:registry_capabilitymetric_changelist")).status_code == 200
    assert (
        staff["viewer"]
        .post(reverse("admin:registry_capabilitymetric_delete", args=[rule.pk]), {"post": "yes"})
        .status_code
        == 403
    )
    assert CapabilityMetric.objects.exists()


def test_a_rules_change_is_in_the_audit_log_by_its_object_type(
    staff: dict[str, Client], api_client_for: Callable[[str], APIClient]
) -> None:
    url = reverse("admin:registry_capabilitymetric_add")
    form = rendered_form(staff["editor"], url, "capabilitymetric_form")
    assert (
        staff["editor"].post(url, form.set("capability", "code").set("metric_name", "success_rate").data).status_code
        == 302
    )
    entries = api_client_for("admin").get("/audit", {"object_type": "capability_metric"}).json()["results"]
    assert [(entry["object_type"], entry["action"], entry["actor"]) for entry in entries] == [
        ("capability_metric", "create", "editor")
    ]
