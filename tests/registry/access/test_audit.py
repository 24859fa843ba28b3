"""The audit log: every configuration change with its actor, no secret in any entry, read-only admin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from rest_framework.test import APIClient

from discovery.models import ProviderSource
from discovery.tasks import discover_source
from registry.access.audit import MASK, acting_as, log_bulk, system_actor
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, RegisteredModel
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
    UserFactory,
)
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

SECRETS = ["sk-live-0123456789abcdef", "Bearer tok-9876543210fedcba", "sk-ant-secret-42"]


def entry_text(entry: LogEntry) -> str:
    """Everything an entry stores, as one string, to search for secrets."""
    return json.dumps(
        [
            entry.changes,
            entry.changes_text,
            entry.serialized_data,
            entry.additional_data,
            entry.object_repr,
            entry.actor_email,
        ],
        default=str,
    )


def assert_no_secret_in_the_log() -> None:
    entries = list(LogEntry.objects.all())
    assert entries, "the log should hold the entries under test"
    for entry in entries:
        text = entry_text(entry)
        for secret in SECRETS:
            assert secret not in text
            assert secret[len(secret) // 2 :] not in text  # not even auditlog's default half-mask


def entries_for(model: type, pk: int) -> list[LogEntry]:
    return list(
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model), object_pk=str(pk)).order_by("id")
    )


@pytest.fixture
def admin_user() -> AbstractUser:
    return UserFactory(username="ops-admin", is_staff=True, is_superuser=True, email="ops@example.test")


@pytest.fixture
def admin_client(admin_user: AbstractUser) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


class TestActors:
    def test_admin_changes_are_logged_with_the_admin_user(self, admin_client: Client, admin_user: AbstractUser) -> None:
        response = admin_client.post(
            "/admin/discovery/providersource/add/",
            {
                "name": "openai",
                "kind": "openai",
                "base_url": "https://api.openai.com/v1",
                "enabled": "on",
                "interval_seconds": "3600",
                "api_key": SECRETS[0],
            },
        )
        assert response.status_code == 302

        source = ProviderSource.objects.get(name="openai")
        [entry] = entries_for(ProviderSource, source.pk)
        assert entry.action == LogEntry.Action.CREATE
        assert entry.actor_id == admin_user.pk
        assert entry.changes["api_key"] == [MASK, MASK]
        assert_no_secret_in_the_log()

    def test_admin_key_change_shows_that_it_changed_not_the_value(
        self, admin_client: Client, admin_user: AbstractUser
    ) -> None:
        source = ProviderSourceFactory(name="anthropic", kind="anthropic", api_key=SECRETS[2])
        response = admin_client.post(
            f"/admin/discovery/providersource/{source.pk}/change/",
            {
                "name": "anthropic",
                "kind": "anthropic",
                "base_url": source.base_url,
                "enabled": "on",
                "interval_seconds": "3600",
                "api_key": SECRETS[0],
            },
        )
        assert response.status_code == 302

        update = entries_for(ProviderSource, source.pk)[-1]
        assert update.action == LogEntry.Action.UPDATE
        assert update.actor_id == admin_user.pk
        assert update.changes == {"api_key": [MASK, MASK]}
        assert_no_secret_in_the_log()

    def test_system_actor_names_discovery_and_commands(self) -> None:
        with system_actor("discovery"):
            model = RegisteredModelFactory(name="qwen2.5:7b")

        [entry] = entries_for(RegisteredModel, model.pk)
        assert entry.actor_id is None
        assert entry.actor_email == "system:discovery"
        assert entry.additional_data == {"actor": "system:discovery"}

    def test_platform_caller_is_named_by_sub_and_role(self) -> None:
        with acting_as(label="platform:6f1c2f5e", details={"sub": "6f1c2f5e", "role": "editor"}):
            model = RegisteredModelFactory()

        [entry] = entries_for(RegisteredModel, model.pk)
        assert entry.actor_email == "platform:6f1c2f5e"
        assert entry.additional_data == {"actor": "platform:6f1c2f5e", "sub": "6f1c2f5e", "role": "editor"}

    def test_bulk_writes_are_logged_with_the_current_actor(self) -> None:
        models = RegisteredModelFactory.create_batch(3)
        LogEntry.objects.all().delete()
        capabilities = ModelCapability.objects.bulk_create(
            [ModelCapability(model=m, capability="code", capability_score=0.5) for m in models]
        )

        with system_actor("discovery"):
            written = log_bulk("create", capabilities, [{"capability_score": ["None", "0.5"]}] * 3)

        assert written == 3
        entries = list(LogEntry.objects.order_by("id"))
        assert [e.object_pk for e in entries] == [str(c.pk) for c in capabilities]
        assert {e.actor_email for e in entries} == {"system:discovery"}
        assert {e.action for e in entries} == {LogEntry.Action.CREATE}

    def test_bulk_entries_of_capabilities_and_parameters_name_their_model_in_one_query(
        self, django_assert_max_num_queries: Any
    ) -> None:
        model = RegisteredModelFactory(name="gpt-4o")
        ModelCapabilityFactory(model=model, capability="code")
        ModelParameterFactory(model=model, parameter_name="temperature")
        other = RegisteredModelFactory(name="o3")
        # Loaded without their model, as a bulk caller might: the names come in one query.
        rows = [*ModelCapability.objects.all(), *ModelParameter.objects.all(), other]
        ContentType.objects.get_for_models(ModelCapability, ModelParameter, RegisteredModel)
        LogEntry.objects.all().delete()

        with django_assert_max_num_queries(2):  # the model names, the insert
            log_bulk("update", rows, [{} for _ in rows])

        assert list(LogEntry.objects.order_by("id").values_list("object_repr", flat=True)) == [
            "gpt-4o: code",
            "gpt-4o: temperature",
            "o3",
        ]

    def test_a_nested_actor_hands_back_to_the_outer_one(self) -> None:
        with system_actor("outer"):
            with system_actor("inner"):
                inner_model = RegisteredModelFactory()
            outer_model = RegisteredModelFactory()

        assert entries_for(RegisteredModel, inner_model.pk)[0].actor_email == "system:inner"
        assert entries_for(RegisteredModel, outer_model.pk)[0].actor_email == "system:outer"

    def test_no_actor_lingers_after_the_block(self) -> None:
        with system_actor("discovery"):
            RegisteredModelFactory()
        model = RegisteredModelFactory()
        log_bulk("update", [model], [{"display_name": ["a", "b"]}])

        assert [e.actor_email for e in entries_for(RegisteredModel, model.pk)] == [None, None]

    def test_deletes_are_logged(self, admin_user: AbstractUser) -> None:
        model = RegisteredModelFactory()
        pk = model.pk
        with acting_as(user=admin_user):
            model.delete()

        assert entries_for(RegisteredModel, pk)[-1].action == LogEntry.Action.DELETE
        assert entries_for(RegisteredModel, pk)[-1].actor_id == admin_user.pk


class TestRoles:
    def test_group_membership_changes_are_logged(self, admin_user: AbstractUser) -> None:
        user = UserFactory(username="alice")
        editor = Group.objects.get(name="editor")

        with acting_as(user=admin_user):
            user.groups.add(editor)
            user.groups.remove(editor)

        entries = [e for e in entries_for(type(user), user.pk) if "groups" in (e.changes or {})]
        assert [e.changes["groups"]["operation"] for e in entries] == ["add", "delete"]
        assert [e.changes["groups"]["objects"] for e in entries] == [["editor"], ["editor"]]
        assert {e.actor_id for e in entries} == {admin_user.pk}

    def test_superuser_promotion_is_logged_without_the_password(self, admin_user: AbstractUser) -> None:
        user = UserFactory(username="bob")
        old_hash = user.password
        with acting_as(user=admin_user):
            user.is_superuser = True
            user.set_password("a-new-password-for-bob")
            user.save()

        update = entries_for(type(user), user.pk)[-1]
        assert update.changes == {"is_superuser": [False, True]}
        # Neither hash, nor even the hasher's name, whichever hasher the settings name.
        text = entry_text(update)
        algorithm = user.password.split("$", 1)[0]
        assert algorithm
        for secret in (old_hash, user.password, f"{algorithm}$", "a-new-password-for-bob"):
            assert secret not in text


class TestSecrets:
    def test_endpoint_secrets_are_masked_in_every_entry(self, admin_user: AbstractUser) -> None:
        with acting_as(user=admin_user):
            endpoint = ModelEndpointFactory(api_key=SECRETS[0], secret_headers={"Authorization": SECRETS[1]})
            endpoint.api_key = SECRETS[2]
            endpoint.secret_headers = {"Authorization": "Bearer tok-rotated-0000", "X-Key": SECRETS[0]}
            endpoint.save()
            endpoint.delete()

        entries = entries_for(ModelEndpoint, endpoint.pk or 0) or list(LogEntry.objects.all())
        assert any(e.changes and e.changes.get("api_key") == [MASK, MASK] for e in entries)
        assert any(e.changes and e.changes.get("secret_headers") == [MASK, MASK] for e in entries)
        assert_no_secret_in_the_log()


@pytest.fixture
def plain_static_files(settings) -> None:
    """Admin pages render without a collectstatic manifest (production builds one in the image)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.mark.usefixtures("plain_static_files")
class TestAdminEndpointHeaders:
    def test_a_credential_typed_into_plain_headers_in_the_admin_is_encrypted_and_stays_out_of_the_log(
        self, admin_client: Client
    ) -> None:
        model = RegisteredModelFactory(name="header-probe")
        form = {
            "name": model.name,
            "display_name": "Header probe",
            "provider": model.provider,
            "model_type": model.model_type,
            "status": model.status,
            "details": "{}",
            "endpoints-TOTAL_FORMS": "1",
            "endpoints-INITIAL_FORMS": "0",
            "endpoints-0-endpoint_type": "rest",
            "endpoints-0-endpoint_url": "http://gpu-1:8000/v1",
            "endpoints-0-headers": json.dumps({"Authorization": SECRETS[1]}),
            "capabilities-TOTAL_FORMS": "0",
            "capabilities-INITIAL_FORMS": "0",
            "parameters-TOTAL_FORMS": "0",
            "parameters-INITIAL_FORMS": "0",
            "prices-TOTAL_FORMS": "0",
            "prices-INITIAL_FORMS": "0",
        }

        response = admin_client.post(f"/admin/registry/registeredmodel/{model.pk}/change/", form)

        assert response.status_code == 302
        endpoint = ModelEndpoint.objects.get(model=model)
        # Moved to the encrypted side, as the API does, and out of the clear column and the log.
        assert endpoint.headers is None
        assert endpoint.secret_headers == {"Authorization": SECRETS[1]}
        assert_no_secret_in_the_log()


@pytest.mark.usefixtures("plain_static_files")
class TestAdmin:
    def test_the_audit_log_is_readable_in_the_admin(self, admin_client: Client) -> None:
        model = RegisteredModelFactory(name="visible-in-audit")
        [entry] = entries_for(RegisteredModel, model.pk)

        listing = admin_client.get("/admin/auditlog/logentry/")
        detail = admin_client.get(f"/admin/auditlog/logentry/{entry.pk}/change/")

        assert listing.status_code == 200
        assert "visible-in-audit" in listing.content.decode()
        assert detail.status_code == 200

    def test_no_one_can_delete_an_entry_in_the_admin(self, admin_client: Client) -> None:
        model = RegisteredModelFactory()
        [entry] = entries_for(RegisteredModel, model.pk)

        page = admin_client.get(f"/admin/auditlog/logentry/{entry.pk}/delete/")
        post = admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"})
        bulk = admin_client.post(
            "/admin/auditlog/logentry/", {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
        )

        assert page.status_code == 403
        assert post.status_code == 403
        assert bulk.status_code == 200  # the changelist, with no delete action to run
        assert LogEntry.objects.filter(pk=entry.pk).exists()

    def test_no_one_can_add_or_change_an_entry_in_the_admin(self, admin_client: Client) -> None:
        model = RegisteredModelFactory()
        [entry] = entries_for(RegisteredModel, model.pk)

        add = admin_client.get("/admin/auditlog/logentry/add/")
        change = admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/change/", {"object_repr": "forged"})

        assert add.status_code == 403
        assert change.status_code == 403
        entry.refresh_from_db()
        assert entry.object_repr != "forged"


class TestThroughTheApiAndDiscovery:
    def test_api_changes_are_logged_with_the_local_caller(self, api_client_for, role_users) -> None:
        body = {"name": "mistral:7b", "display_name": "Mistral 7B", "provider": "ollama", "model_type": "chat"}
        response = api_client_for("editor").post("/models", body, format="json")
        assert response.status_code == 201

        [entry] = entries_for(RegisteredModel, response.json()["id"])
        assert entry.action == LogEntry.Action.CREATE
        assert entry.actor_id == role_users["editor"].pk

    def test_api_changes_by_a_platform_token_name_its_sub_and_role(self) -> None:
        client = APIClient()
        token = platform_token("authenticated", registry_role="editor", sub="0b5e-platform-user")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        body = {"name": "phi3:mini", "display_name": "Phi-3 mini", "provider": "ollama", "model_type": "chat"}

        response = client.post("/models", body, format="json")
        assert response.status_code == 201

        [entry] = entries_for(RegisteredModel, response.json()["id"])
        assert entry.actor_id is None
        assert entry.actor_email == "platform:0b5e-platform-user"
        assert entry.additional_data == {
            "actor": "platform:0b5e-platform-user",
            "sub": "0b5e-platform-user",
            "role": "authenticated",
        }

    def test_api_endpoint_credentials_never_reach_the_log(self, api_client_for) -> None:
        model = RegisteredModelFactory(name="gpt-4o", provider="openai")
        endpoint = {
            "endpoint_type": "rest",
            "endpoint_url": "https://api.openai.com/v1/chat/completions",
            "auth_type": "api_key",
            "api_key": SECRETS[0],
            "headers": {"Authorization": SECRETS[1], "X-Team": "platform"},
        }
        response = api_client_for("editor").post(f"/models/{model.name}/endpoints", endpoint, format="json")
        assert response.status_code == 201

        [entry] = entries_for(ModelEndpoint, response.json()["id"])
        assert entry.changes["api_key"] == [MASK, MASK]
        assert entry.changes["secret_headers"] == [MASK, MASK]
        assert_no_secret_in_the_log()

    def test_discovery_changes_are_logged_with_the_system_actor(self) -> None:
        fake = FakeOllama().start()
        try:
            source = ProviderSourceFactory(name="ollama-audit", base_url=fake.url)
            LogEntry.objects.all().delete()
            discover_source.apply(args=(source.pk,), kwargs={"trigger": "manual"})
        finally:
            fake.stop()

        model_entries = list(LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(RegisteredModel)))
        assert {e.object_repr for e in model_entries} == {tag["name"] for tag in fake.tags}
        assert {e.actor_email for e in LogEntry.objects.all()} == {"system:discovery"}
        assert {e.actor_id for e in LogEntry.objects.all()} == {None}
