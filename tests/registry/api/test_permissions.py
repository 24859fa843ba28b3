"""The permission matrix: every route and method against every kind of caller, each with its exact status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from registry.access.roles import Role
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

NAME = "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"
MODEL = "/models/hf.co%2Fbartowski%2FLlama-3.2-3B-Instruct-GGUF:Q4_K_M"
NEW_MODEL = {"name": "gpt-4o", "display_name": "GPT-4o", "provider": "openai", "model_type": "chat"}
ENDPOINT = {"endpoint_type": "rest", "endpoint_url": "https://llm.example.com/v1"}

# (method, path, body, minimum role, status on success); {endpoint} is the fixture endpoint's id.
ROUTES: list[tuple[str, str, Any, Role, int]] = [
    ("get", "/models", None, Role.VIEWER, 200),
    ("post", "/models", NEW_MODEL, Role.EDITOR, 201),
    ("get", "/models/select?capability=code", None, Role.VIEWER, 200),
    ("get", "/models/compare?models={model},other-model", None, Role.VIEWER, 200),
    ("get", MODEL, None, Role.VIEWER, 200),
    ("put", MODEL, {**NEW_MODEL, "name": NAME}, Role.EDITOR, 200),
    ("patch", MODEL, {"description": "changed"}, Role.EDITOR, 200),
    ("delete", MODEL, None, Role.ADMIN, 204),
    ("get", f"{MODEL}/capabilities", None, Role.VIEWER, 200),
    ("post", f"{MODEL}/capabilities", {"capability": "reasoning", "capability_score": 0.6}, Role.EDITOR, 201),
    ("delete", f"{MODEL}/capabilities/code", None, Role.EDITOR, 204),
    ("get", f"{MODEL}/parameters", None, Role.VIEWER, 200),
    ("post", f"{MODEL}/parameters", {"parameter_name": "top_p", "default_value": 0.9}, Role.EDITOR, 201),
    ("get", f"{MODEL}/performance", None, Role.VIEWER, 200),
    ("post", f"{MODEL}/performance", {"metric_name": "accuracy", "metric_value": 0.8}, Role.SERVICE, 201),
    ("get", f"{MODEL}/usage", None, Role.VIEWER, 200),
    ("get", f"{MODEL}/availability", None, Role.VIEWER, 200),
    ("post", f"{MODEL}/usage", [{"token_count": 10}, {"token_count": 20}], Role.SERVICE, 201),
    ("get", f"{MODEL}/endpoints", None, Role.VIEWER, 200),
    ("post", f"{MODEL}/endpoints", ENDPOINT, Role.EDITOR, 201),
    ("get", f"{MODEL}/endpoints/{{endpoint}}", None, Role.VIEWER, 200),
    ("put", f"{MODEL}/endpoints/{{endpoint}}", ENDPOINT, Role.EDITOR, 200),
    ("patch", f"{MODEL}/endpoints/{{endpoint}}", {"api_key": "sk-new"}, Role.EDITOR, 200),
    ("delete", f"{MODEL}/endpoints/{{endpoint}}", None, Role.EDITOR, 204),
    ("get", "/api/schema", None, Role.VIEWER, 200),
    ("get", "/api/docs", None, Role.VIEWER, 200),
]

# caller -> the role it has, or the status it gets whatever the route (401: not authenticated at all).
CALLERS: dict[str, Role | int] = {
    "anonymous": 401,
    "expired": 401,
    "forged": 401,
    "alg-none": 401,
    "viewer": Role.VIEWER,
    "service": Role.SERVICE,
    "editor": Role.EDITOR,
    "admin": Role.ADMIN,
    "platform-anon": 403,
    "platform-authenticated": Role.VIEWER,
    "platform-service_role": Role.ADMIN,
}


def token_for(caller: str, users: dict[str, AbstractUser]) -> str | None:
    if caller == "anonymous":
        return None
    if caller == "expired":
        token = AccessToken.for_user(users["admin"])
        token.set_exp(lifetime=-timedelta(minutes=1))
        return str(token)
    if caller == "forged":
        return platform_token("service_role", secret="an-attacker-secret-of-thirty-two-bytes!!")
    if caller == "alg-none":
        return platform_token("service_role", algorithm="none")
    if caller.startswith("platform-"):
        return platform_token(caller.removeprefix("platform-"))
    return str(AccessToken.for_user(users[caller]))


@pytest.fixture
def plain_static_files(settings: Any) -> None:
    """/api/docs renders without a collectstatic manifest (production builds one in the image)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def expected_status(caller: str, required: Role, success: int) -> int:
    grant = CALLERS[caller]
    if not isinstance(grant, Role):
        return grant
    return success if grant >= required else 403


@pytest.mark.usefixtures("plain_static_files")
@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize(
    ("method", "path", "body", "required", "success"),
    ROUTES,
    ids=[f"{method.upper()} {path.replace(MODEL, '/models/{ref}')}" for method, path, *_ in ROUTES],
)
def test_permission_matrix(
    role_users: dict[str, AbstractUser],
    caller: str,
    method: str,
    path: str,
    body: Any,
    required: Role,
    success: int,
) -> None:
    model = RegisteredModelFactory(name=NAME)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    endpoint = ModelEndpointFactory(model=model)
    RegisteredModelFactory(name="other-model")  # GET /models/compare compares two
    client = APIClient()
    token = token_for(caller, role_users)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = getattr(client, method)(path.format(endpoint=endpoint.pk, model=model.pk), body, format="json")
    assert response.status_code == expected_status(caller, required, success)
    if response.status_code == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="model-registry"'


def test_login_endpoints_need_no_token(role_users: dict[str, AbstractUser]) -> None:
    client = APIClient()
    bad_login = client.post("/auth/token", {"username": "viewer", "password": "wrong"}, format="json")
    assert bad_login.status_code == 401
    token = str(AccessToken.for_user(role_users["viewer"]))
    assert client.post("/auth/token/verify", {"token": token}, format="json").status_code == 200
