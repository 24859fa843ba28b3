"""The console's "Try a selection" page: the API's answer for a router's requirements, as two tables."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from registry.models import Provider
from tests.factories import model_with

pytestmark = pytest.mark.django_db


def test_the_page_shows_the_chain_and_the_reason_each_other_model_is_out(staff: dict[str, Client]) -> None:
    primary = model_with("qwen2.5-coder:32b", {"code": 0.9}, context_window=32768)
    model_with("llama3:8b", {"code": 0.6}, context_window=8192)
    model_with(
        "gpt-4o",
        {"code": 0.95},
        provider=Provider.OPENAI,
        input_cost_per_mtok=Decimal("2.5"),
        output_cost_per_mtok=Decimal("10"),
    )
    query = "capabilities=code%3D0.7&max_input_cost=1&exclude="
    response = staff["viewer"].get(f"/admin/selection/?{query}")
    assert response.status_code == 200
    answer = response.context["answer"]
    assert [entry["name"] for entry in answer["chain"]] == ["qwen2.5-coder:32b"]
    page = response.content.decode()
    assert f"/admin/registry/registeredmodel/{primary.pk}/change/" in page
    assert "primary" in page
    assert "&#x27;code&#x27; score 0.6 is below 0.7." in page
    assert "Input price 2.5 is above 1 per million tokens." in page


def test_without_a_question_the_page_shows_only_the_form(staff: dict[str, Client]) -> None:
    response = staff["viewer"].get("/admin/selection/")
    assert response.status_code == 200
    assert response.context["answer"] is None
    assert 'id="selection-form"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("capabilities=code", "capabilities", "needs a minimum score"),
        ("capabilities=code%3Dhigh", "capabilities", "is not a number"),
        ("capabilities=code%3D1.5", "capabilities", "between 0 and 1"),
        ("capabilities=code%3D0.5&limit=0", "limit", "greater than or equal to 1"),
        ("capabilities=code%3D0.5&max_input_cost=-1", "max_input_cost", "greater than or equal to 0"),
        ("capabilities=code%3D0.5&max_output_cost=-1", "max_output_cost", "greater than or equal to 0"),
        ("capabilities=code%3D0.5&max_error_rate=3", "max_error_rate", "less than or equal to 1"),
    ],
)
def test_bad_requirements_are_shown_next_to_their_field(
    staff: dict[str, Client], query: str, field: str, message: str
) -> None:
    response = staff["viewer"].get(f"/admin/selection/?{query}")
    assert response.status_code == 200
    assert response.context["answer"] is None
    errors = response.context["form"].errors
    assert message in " ".join(errors[field]), errors


def test_the_page_needs_the_permission_to_view_models(staff: dict[str, Client]) -> None:
    nobody = User.objects.create_user("nobody", is_staff=True)
    client = Client()
    client.force_login(nobody)
    assert client.get("/admin/selection/?capabilities=code%3D0.5").status_code == 403
    assert Client().get("/admin/selection/").status_code == 302  # to the login page
