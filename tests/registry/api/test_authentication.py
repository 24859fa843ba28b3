"""The authentication layer: local (simplejwt) tokens, platform (GoTrue) tokens, and role checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from registry.access.roles import Role
from registry.api.authentication import PlatformUser, request_role
from registry.api.permissions import ActionRoles, HasRole, IsAdmin
from tests.factories import UserFactory
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db


class WhoAmI(APIView):
    """A view that needs only authentication: reports who the layer says is calling."""

    permission_classes = [HasRole(Role.VIEWER)]

    def get(self, request: Request) -> Response:
        user = request.user
        role = request_role(request)
        if isinstance(user, PlatformUser):
            return Response({"kind": "platform", "sub": user.sub, "platform_role": user.platform_role, "role": role})
        return Response({"kind": "local", "username": user.username, "role": role})  # type: ignore[union-attr]


class AdminOnly(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ByAction(APIView):
    permission_classes = [ActionRoles]
    action_roles = {"get": Role.VIEWER, "post": Role.SERVICE}

    def get(self, request: Request) -> Response:
        return Response({"ok": True})

    def post(self, request: Request) -> Response:
        return Response({"ok": True})

    def delete(self, request: Request) -> Response:
        return Response({"ok": True})


def call(view: type[APIView], token: str | None, method: str = "get") -> Response:
    factory = APIRequestFactory()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    request = getattr(factory, method)("/probe", **headers)
    response: Response = view.as_view()(request)
    return response


def test_anonymous_request_gets_401_with_www_authenticate() -> None:
    response = call(WhoAmI, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="model-registry"'


def test_local_token_authenticates_the_user_with_the_role_of_their_group(
    role_users: dict[str, AbstractUser],
) -> None:
    response = call(WhoAmI, str(AccessToken.for_user(role_users["editor"])))
    assert response.status_code == 200
    assert response.data == {"kind": "local", "username": "editor", "role": Role.EDITOR}


def test_superuser_without_groups_is_admin() -> None:
    root = UserFactory(username="root", password=None, is_superuser=True)
    response = call(WhoAmI, str(AccessToken.for_user(root)))
    assert response.data["role"] == Role.ADMIN


def test_local_user_without_a_role_gets_403() -> None:
    nobody = UserFactory(username="nobody", password=None)
    assert call(WhoAmI, str(AccessToken.for_user(nobody))).status_code == 403


def test_expired_local_token_gets_401(role_users: dict[str, AbstractUser]) -> None:
    token = AccessToken.for_user(role_users["admin"])
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = call(WhoAmI, str(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="model-registry"'


def test_local_token_of_a_deactivated_user_gets_401(role_users: dict[str, AbstractUser]) -> None:
    user = role_users["admin"]
    token = str(AccessToken.for_user(user))
    user.is_active = False
    user.save()
    assert call(WhoAmI, token).status_code == 401


def test_local_token_signed_with_another_key_gets_401(role_users: dict[str, AbstractUser]) -> None:
    token = AccessToken.for_user(role_users["admin"])
    forged = platform_token(extra=dict(token.payload), secret="not-the-secret-key-not-the-secret-key")
    assert call(WhoAmI, forged).status_code == 401


@pytest.mark.parametrize(
    ("platform_role", "registry_role", "expected_status", "expected_role"),
    [
        ("service_role", None, 200, Role.ADMIN),
        ("authenticated", None, 200, Role.VIEWER),
        ("authenticated", "editor", 200, Role.EDITOR),
        ("authenticated", "service", 200, Role.SERVICE),
        ("anon", None, 403, None),
        ("anon", "admin", 403, None),
        ("authenticated", "superhero", 403, None),
        ("unknown-role", None, 403, None),
    ],
)
def test_platform_token_maps_its_role_to_a_registry_role(
    platform_role: str, registry_role: str | None, expected_status: int, expected_role: Role | None
) -> None:
    response = call(WhoAmI, platform_token(platform_role, registry_role=registry_role, sub="user-42"))
    assert response.status_code == expected_status
    if expected_status == 200:
        assert response.data == {
            "kind": "platform",
            "sub": "user-42",
            "platform_role": platform_role,
            "role": expected_role,
        }


@pytest.mark.parametrize(
    "token_kwargs",
    [
        pytest.param({"expires_in": -10}, id="expired"),
        pytest.param({"expires_in": None}, id="no-exp"),
        pytest.param({"secret": "wrong-secret-wrong-secret-wrong-secret"}, id="wrong-signature"),
        pytest.param({"algorithm": "none"}, id="alg-none"),
        pytest.param(
            {"algorithm": "HS512"},
            id="other-algorithm",
            # Signed with the right secret, which is short for HS512: the algorithm is what must fail.
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        pytest.param({"audience": "someone-else"}, id="wrong-audience"),
        pytest.param({"audience": None}, id="no-audience"),
        pytest.param({"sub": ""}, id="empty-subject"),
    ],
)
def test_bad_platform_tokens_get_401(token_kwargs: dict[str, object]) -> None:
    response = call(WhoAmI, platform_token("service_role", **token_kwargs))  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="model-registry"'


def test_garbage_token_gets_401() -> None:
    assert call(WhoAmI, "not-a-jwt").status_code == 401


def test_has_role_refuses_lower_roles(role_users: dict[str, AbstractUser]) -> None:
    statuses = {name: call(AdminOnly, str(AccessToken.for_user(user))).status_code for name, user in role_users.items()}
    assert statuses == {"viewer": 403, "service": 403, "editor": 403, "admin": 200}


def test_action_roles_grant_per_method_and_refuse_unlisted_actions(role_users: dict[str, AbstractUser]) -> None:
    viewer = str(AccessToken.for_user(role_users["viewer"]))
    service = str(AccessToken.for_user(role_users["service"]))
    admin = str(AccessToken.for_user(role_users["admin"]))
    assert call(ByAction, viewer, "get").status_code == 200
    assert call(ByAction, viewer, "post").status_code == 403
    assert call(ByAction, service, "post").status_code == 200
    assert call(ByAction, admin, "delete").status_code == 403


def test_login_returns_tokens_that_authenticate(api_client_for: Callable[[str], APIClient]) -> None:
    user = UserFactory(username="alice", password="a-long-password-123")
    client = APIClient()
    response = client.post("/auth/token", {"username": "alice", "password": "a-long-password-123"}, format="json")
    assert response.status_code == 200
    assert call(WhoAmI, response.json()["access"]).status_code == 403  # authenticated, no role yet
    user.groups.add(*[g for g in user.groups.model.objects.filter(name="viewer")])
    assert call(WhoAmI, response.json()["access"]).status_code == 200
    refreshed = client.post("/auth/token/refresh", {"refresh": response.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200
    verified = client.post("/auth/token/verify", {"token": refreshed.json()["access"]}, format="json")
    assert verified.status_code == 200


def test_login_with_a_wrong_password_gets_401() -> None:
    UserFactory(username="bob", password="a-long-password-123")
    response = APIClient().post("/auth/token", {"username": "bob", "password": "wrong"}, format="json")
    assert response.status_code == 401


def test_api_client_for_carries_a_token_of_the_role(api_client_for: Callable[[str], APIClient]) -> None:
    client = api_client_for("service")
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]  # type: ignore[attr-defined]
    assert call(WhoAmI, token).data["role"] == Role.SERVICE


def test_allow_any_views_do_not_need_a_token() -> None:
    class Open(APIView):
        permission_classes = [AllowAny]

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

    assert call(Open, None).status_code == 200


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "a.!!!.c", "e30.W10.sig", "e30.bnVsbA.sig", "..", "e30.%%%.x"])
def test_a_malformed_token_is_refused_with_401(garbage: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {garbage}")
    response = client.get("/models")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
