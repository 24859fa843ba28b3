"""/models and /models/{ref}: registration, reads by id or name, changes, deletion, validation."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
import requests
from auditlog.models import LogEntry
from django.db.models.signals import pre_save
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from registry.models import ModelCapability, ModelEndpoint, ModelUsage, RegisteredModel, SetBy
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ModelUsageFactory,
    RegisteredModelFactory,
)
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]

EXAMPLE_NAMES = [
    "llama3.2:latest",
    "gpt-4o",
    "claude-sonnet-4-5-20250929",
    "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M",
]


def new_model(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "llama3.2:latest",
        "display_name": "Llama 3.2",
        "provider": "ollama",
        "model_type": "chat",
    }
    body.update(overrides)
    return body


def test_register_a_model_with_capabilities_and_endpoints(api_client_for: ClientFor) -> None:
    body = new_model(
        version="3.2",
        context_window=131072,
        input_cost_per_mtok=0.5,
        capabilities={"code": 0.92, "text": 0.8},
        endpoints=[{"endpoint_type": "rest", "endpoint_url": "http://llm-service:11434/api/chat"}],
    )
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201
    data = response.json()
    model = RegisteredModel.objects.get(name="llama3.2:latest")
    assert response["Location"] == f"/models/{model.pk}"
    assert data["id"] == model.pk
    assert data["capabilities"] == {"code": 0.92, "text": 0.8}
    assert data["available"] is True
    assert data["status"] == "available"
    assert data["context_window"] == 131072
    assert data["input_cost_per_mtok"] == 0.5
    assert data["endpoints"][0]["endpoint_url"] == "http://llm-service:11434/api/chat"
    assert data["endpoints"][0]["source"] is None
    assert set(ModelCapability.objects.filter(model=model).values_list("set_by", flat=True)) == {SetBy.OPERATOR}


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("encode", [False, True], ids=["raw", "percent-encoded"])
def test_every_route_finds_a_model_by_its_name(api_client_for: ClientFor, name: str, encode: bool) -> None:
    model = RegisteredModelFactory(name=name)
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    ModelParameterFactory(model=model)
    endpoint = ModelEndpointFactory(model=model)
    ref = quote(name, safe="") if encode else name
    client = api_client_for("admin")
    assert client.get(f"/models/{ref}").json()["id"] == model.pk
    assert client.get(f"/models/{ref}/capabilities").json()[0]["capability"] == "code"
    assert client.get(f"/models/{ref}/parameters").json()[0]["parameter_name"] == "temperature"
    assert client.get(f"/models/{ref}/endpoints").json()[0]["id"] == endpoint.pk
    assert client.get(f"/models/{ref}/endpoints/{endpoint.pk}").status_code == 200
    assert client.get(f"/models/{ref}/usage").json()["model"] == name
    assert client.get(f"/models/{ref}/performance").json()["model"] == name
    assert client.post(f"/models/{ref}/usage", {"token_count": 3}, format="json").status_code == 201
    assert client.patch(f"/models/{ref}", {"description": "found"}, format="json").status_code == 200
    assert client.delete(f"/models/{ref}/capabilities/code").status_code == 204
    assert client.delete(f"/models/{ref}").status_code == 204
    assert not RegisteredModel.objects.filter(name=name).exists()


def test_a_model_is_found_by_its_integer_id(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    assert api_client_for("viewer").get(f"/models/{model.pk}").json()["name"] == "gpt-4o"


def test_unknown_model_is_404(api_client_for: ClientFor) -> None:
    client = api_client_for("admin")
    assert client.get("/models/no-such-model").status_code == 404
    assert client.get("/models/999999").status_code == 404
    assert client.get("/models/no/such/model/capabilities").status_code == 404


def test_representation_shows_capabilities_as_a_mapping_and_hides_credentials(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o", provider="openai")
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.92)
    ModelCapabilityFactory(model=model, capability="text", capability_score=0.8)
    ModelEndpointFactory(
        model=model,
        endpoint_url="https://api.openai.com/v1",
        api_key="sk-very-secret",
        headers={"OpenAI-Organization": "org-1"},
        secret_headers={"Authorization": "Bearer sk-very-secret"},
    )
    response = api_client_for("admin").get("/models/gpt-4o")
    data = response.json()
    assert data["capabilities"] == {"code": 0.92, "text": 0.8}
    endpoint = data["endpoints"][0]
    assert endpoint["has_api_key"] is True
    assert endpoint["secret_header_names"] == ["Authorization"]
    assert endpoint["headers"] == {"OpenAI-Organization": "org-1"}
    assert "api_key" not in endpoint
    assert "secret_headers" not in endpoint
    assert b"sk-very-secret" not in response.content


def test_credential_headers_are_stored_encrypted_not_in_clear_headers(api_client_for: ClientFor) -> None:
    body = new_model(
        endpoints=[
            {
                "endpoint_type": "rest",
                "endpoint_url": "https://llm.example.com/v1",
                "headers": {"Authorization": "Bearer t0ken", "X-Api-Key": "k3y", "X-Tenant": "blue"},
            }
        ]
    )
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201
    endpoint = ModelEndpoint.objects.get()
    assert endpoint.headers == {"X-Tenant": "blue"}
    assert endpoint.secret_headers == {"Authorization": "Bearer t0ken", "X-Api-Key": "k3y"}
    assert response.json()["endpoints"][0]["secret_header_names"] == ["Authorization", "X-Api-Key"]
    assert b"t0ken" not in response.content
    assert b"k3y" not in response.content


def test_headers_named_like_credentials_are_stored_encrypted_too(api_client_for: ClientFor) -> None:
    headers = {"X-Credential": "c1", "X-Session": "s1", "X-Signature": "g1", "Cookie2": "k1", "X-Tenant": "blue"}
    endpoint_body = {"endpoint_type": "rest", "endpoint_url": "https://llm.example.com", "headers": headers}
    body = new_model(endpoints=[endpoint_body])
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201
    endpoint = ModelEndpoint.objects.get()
    assert endpoint.headers == {"X-Tenant": "blue"}
    assert sorted(endpoint.secret_headers) == ["Cookie2", "X-Credential", "X-Session", "X-Signature"]
    for value in (b"c1", b"s1", b"g1", b"k1"):
        assert value not in response.content


def test_audit_entries_of_a_secret_hold_no_value(api_client_for: ClientFor) -> None:
    body = new_model(
        endpoints=[{"endpoint_type": "rest", "endpoint_url": "https://x.example", "api_key": "sk-audit-secret"}]
    )
    api_client_for("editor").post("/models", body, format="json")
    dumped = " ".join(str(entry.changes) for entry in LogEntry.objects.all())
    assert "sk-audit-secret" not in dumped


def test_writes_are_audited_with_the_local_user_as_actor(api_client_for: ClientFor) -> None:
    api_client_for("editor").post("/models", new_model(), format="json")
    entry = LogEntry.objects.get(object_repr="llama3.2:latest", action=LogEntry.Action.CREATE)
    assert entry.actor is not None
    assert entry.actor.get_username() == "editor"


def test_writes_with_a_platform_token_are_audited_with_the_platform_subject() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {platform_token('service_role', sub='svc-router')}")
    assert client.post("/models", new_model(), format="json").status_code == 201
    entry = LogEntry.objects.get(object_repr="llama3.2:latest", action=LogEntry.Action.CREATE)
    assert entry.actor is None
    assert entry.actor_email == "platform:svc-router"
    assert entry.additional_data == {"actor": "platform:svc-router", "sub": "svc-router", "role": "service_role"}


def test_duplicate_name_is_409_naming_the_conflict(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o")
    response = api_client_for("editor").post("/models", new_model(name="gpt-4o"), format="json")
    assert response.status_code == 409
    assert response.json() == {"name": ["A model named 'gpt-4o' already exists."]}
    assert RegisteredModel.objects.count() == 1


def test_renaming_to_a_taken_name_is_409_and_changes_nothing(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o")
    RegisteredModelFactory(name="gpt-4o-mini")
    response = api_client_for("editor").patch("/models/gpt-4o-mini", {"name": "gpt-4o"}, format="json")
    assert response.status_code == 409
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"gpt-4o", "gpt-4o-mini"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 101),
        ("name", "has space"),
        ("name", "tab\there"),
        ("name", "ctl\x07char"),
        ("name", "12345"),
        ("name", "select"),
        ("name", "org/model/capabilities"),
        ("name", "org/usage/model"),
        ("name", "/leading-slash"),
        ("name", "trailing/"),
        ("name", "double//slash"),
        ("name", "what?"),
        ("display_name", ""),
        ("display_name", "y" * 201),
        ("provider", "azure"),
        ("model_type", "audio"),
        ("status", "gone"),
        ("context_window", 0),
        ("context_window", "many"),
        ("input_cost_per_mtok", -1),
        ("details", ["not", "an", "object"]),
        ("details", {"blob": "z" * 17000}),
        ("capabilities", {"Code": 0.5}),
        ("capabilities", {"code": 1.5}),
        ("capabilities", {"code": -0.1}),
        ("capabilities", {"code": "high"}),
        ("endpoints", [{"endpoint_type": "rest", "endpoint_url": "ftp://host/x"}]),
        ("endpoints", [{"endpoint_type": "rest", "endpoint_url": "http:///no-host"}]),
        ("endpoints", [{"endpoint_type": "rest", "headers": {"X-A": 1}}]),
        ("endpoints", [{"endpoint_type": "rest", "headers": {"X-A": "a\r\nInjected: yes"}}]),
        ("endpoints", [{"endpoint_type": "rest", "headers": {"Bad Name": "v"}}]),
        ("endpoints", [{"endpoint_type": "rest", "headers": {"X-Nested": {"a": "b"}}}]),
        ("endpoints", [{"endpoint_type": "rest", "headers": {f"X-H{i}": "v" for i in range(51)}}]),
        ("endpoints", [{"endpoint_type": "rest", "unknown": True}]),
    ],
)
def test_invalid_model_is_400_naming_the_field_and_writes_nothing(
    api_client_for: ClientFor, field: str, value: Any
) -> None:
    response = api_client_for("editor").post("/models", new_model(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert RegisteredModel.objects.count() == 0
    assert ModelEndpoint.objects.count() == 0


def test_unknown_fields_are_rejected_by_name(api_client_for: ClientFor) -> None:
    response = api_client_for("editor").post("/models", new_model(dispaly_name="typo"), format="json")
    assert response.status_code == 400
    assert response.json() == {"dispaly_name": ["Unknown field."]}


def test_read_only_fields_sent_back_are_ignored(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o", description="old")
    client = api_client_for("editor")
    representation = client.get("/models/gpt-4o").json()
    representation["description"] = "new"
    representation["id"] = 999
    representation["available"] = False
    response = client.put("/models/gpt-4o", representation, format="json")
    assert response.status_code == 200
    model.refresh_from_db()
    assert model.description == "new"
    assert model.pk != 999


def test_put_replaces_capabilities_and_endpoints_when_given(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o", provider="openai")
    ModelCapabilityFactory(model=model, capability="text", capability_score=0.8)
    kept = ModelEndpointFactory(model=model, endpoint_url="https://a.example", api_key="sk-keep")
    dropped = ModelEndpointFactory(model=model, endpoint_url="https://b.example")
    body = {
        **new_model(name="gpt-4o", provider="openai"),
        "capabilities": {"code": 0.9},
        "endpoints": [
            {"id": kept.pk, "endpoint_type": "rest", "endpoint_url": "https://a2.example"},
            {"endpoint_type": "rest", "endpoint_url": "https://c.example"},
        ],
    }
    response = api_client_for("editor").put("/models/gpt-4o", body, format="json")
    assert response.status_code == 200
    assert response.json()["capabilities"] == {"code": 0.9}
    urls = sorted(ModelEndpoint.objects.filter(model=model).values_list("endpoint_url", flat=True))
    assert urls == ["https://a2.example", "https://c.example"]
    kept.refresh_from_db()
    assert kept.api_key == "sk-keep"
    assert not ModelEndpoint.objects.filter(pk=dropped.pk).exists()


def test_put_with_an_endpoint_of_another_model_is_400(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o")
    other = ModelEndpointFactory()
    body = {**new_model(name="gpt-4o"), "endpoints": [{"id": other.pk, "endpoint_type": "rest"}]}
    response = api_client_for("editor").put("/models/gpt-4o", body, format="json")
    assert response.status_code == 400
    assert "endpoints" in response.json()


def test_put_needs_every_required_field(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o")
    response = api_client_for("editor").put("/models/gpt-4o", {"display_name": "GPT-4o"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "provider", "model_type"}


def test_patch_changes_only_what_it_names(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o", display_name="GPT-4o", description="kept")
    response = api_client_for("editor").patch("/models/gpt-4o", {"status": "deprecated"}, format="json")
    assert response.status_code == 200
    assert response.json()["available"] is False
    model.refresh_from_db()
    assert (model.status, model.description, model.display_name) == ("deprecated", "kept", "GPT-4o")


def test_delete_keeps_usage_history_under_the_models_name(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    ModelUsageFactory(model=model, token_count=42)
    assert api_client_for("admin").delete("/models/gpt-4o").status_code == 204
    usage = ModelUsage.objects.get()
    assert (usage.model_id, usage.model_name, usage.token_count) == (None, "gpt-4o", 42)


def test_list_filters(api_client_for: ClientFor) -> None:
    coder = RegisteredModelFactory(name="qwen2.5-coder:7b", description="A coding model")
    ModelCapabilityFactory(model=coder, capability="code", capability_score=0.9)
    weak = RegisteredModelFactory(name="tinyllama:latest")
    ModelCapabilityFactory(model=weak, capability="code", capability_score=0.3)
    RegisteredModelFactory(name="gpt-4o", provider="openai", status="unavailable")
    RegisteredModelFactory(name="text-embedding-3-small", provider="openai", model_type="embedding")
    client = api_client_for("viewer")

    def names(query: str) -> list[str]:
        response = client.get(f"/models?{query}")
        assert response.status_code == 200
        return [item["name"] for item in response.json()["results"]]

    assert names("provider=openai") == ["gpt-4o", "text-embedding-3-small"]
    assert names("model_type=embedding") == ["text-embedding-3-small"]
    assert names("status=unavailable") == ["gpt-4o"]
    assert names("available=false") == ["gpt-4o"]
    assert names("available=true&provider=openai") == ["text-embedding-3-small"]
    assert names("capability=code&min_score=0.7") == ["qwen2.5-coder:7b"]
    assert names("capability=code") == ["qwen2.5-coder:7b", "tinyllama:latest"]
    assert names("search=coding") == ["qwen2.5-coder:7b"]
    assert names("search=TINY") == ["tinyllama:latest"]
    assert names("ordering=-name&provider=openai") == ["text-embedding-3-small", "gpt-4o"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("provider=azure", "provider"),
        ("available=maybe", "available"),
        ("min_score=2&capability=code", "min_score"),
        ("ordering=password", "ordering"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
    ],
)
def test_bad_list_query_is_400_naming_the_parameter(api_client_for: ClientFor, query: str, field: str) -> None:
    response = api_client_for("viewer").get(f"/models?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_list_paginates_in_a_stable_order_with_a_count(api_client_for: ClientFor) -> None:
    for index in range(5):
        RegisteredModelFactory(name=f"m{index}", provider="ollama" if index % 2 else "openai")
    client = api_client_for("viewer")
    first = client.get("/models?ordering=provider&limit=2").json()
    second = client.get("/models?ordering=provider&limit=2&offset=2").json()
    third = client.get("/models?ordering=provider&limit=2&offset=4").json()
    assert first["count"] == 5
    names = [m["name"] for page in (first, second, third) for m in page["results"]]
    assert names == ["m1", "m3", "m0", "m2", "m4"]
    assert third["next"] is None


def test_cached_detail_reflects_a_write_immediately(
    api_client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    RegisteredModelFactory(name="gpt-4o", description="before")
    client = api_client_for("editor")
    assert client.get("/models/gpt-4o").json()["description"] == "before"
    # The test's transaction never commits: run the after-commit invalidation as a commit would.
    with django_capture_on_commit_callbacks(execute=True):
        client.patch("/models/gpt-4o", {"description": "after"}, format="json")
    assert client.get("/models/gpt-4o").json()["description"] == "after"


def test_costs_are_numbers_in_json(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o", input_cost_per_mtok=Decimal("2.5"), output_cost_per_mtok=Decimal("10"))
    data = api_client_for("viewer").get("/models/gpt-4o").json()
    assert (data["input_cost_per_mtok"], data["output_cost_per_mtok"]) == (2.5, 10.0)


def test_malformed_json_is_400(api_client_for: ClientFor) -> None:
    response = api_client_for("editor").post("/models", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_nan_is_not_a_number_here(api_client_for: ClientFor) -> None:
    body = (
        '{"name": "m", "display_name": "m", "provider": "ollama", "model_type": "chat", "capabilities": {"code": NaN}}'
    )
    response = api_client_for("editor").post("/models", body, content_type="application/json")
    assert response.status_code == 400
    assert RegisteredModel.objects.count() == 0


def test_sending_back_what_was_read_keeps_discoverys_capabilities(api_client_for: ClientFor) -> None:
    model = RegisteredModelFactory(name="gpt-4o")
    ModelCapabilityFactory(model=model, capability="text", capability_score=0.8, set_by=SetBy.DISCOVERY)
    client = api_client_for("editor")
    representation = client.get("/models/gpt-4o").json()
    representation["capabilities"]["code"] = 0.7
    assert client.put("/models/gpt-4o", representation, format="json").status_code == 200
    owners = dict(ModelCapability.objects.filter(model=model).values_list("capability", "set_by"))
    assert owners == {"text": SetBy.DISCOVERY, "code": SetBy.OPERATOR}


def test_a_method_a_route_does_not_have_is_405_for_a_role_and_401_without_a_token(
    api_client_for: ClientFor,
) -> None:
    RegisteredModelFactory(name="gpt-4o")
    assert api_client_for("viewer").delete("/models").status_code == 405
    assert api_client_for("viewer").put("/models/gpt-4o/usage", {}, format="json").status_code == 405
    assert APIClient().delete("/models").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_names_work_over_real_http(live_server: Any, role_users: dict[str, Any]) -> None:
    """Through a real HTTP server, where the WSGI layer decodes %2F before Django routes."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {AccessToken.for_user(role_users['editor'])}"
    for name in EXAMPLE_NAMES:
        body = new_model(name=name, capabilities={"code": 0.9})
        assert session.post(f"{live_server.url}/models", json=body, timeout=10).status_code == 201
        for ref in (quote(name, safe=""), name):
            response = session.get(f"{live_server.url}/models/{ref}/capabilities", timeout=10)
            assert response.status_code == 200
            assert response.json()[0]["capability"] == "code"
            assert session.get(f"{live_server.url}/models/{ref}", timeout=10).json()["name"] == name


def test_api_writes_leave_no_audit_signal_receiver_behind(api_client_for: ClientFor) -> None:
    """auditlog connects a receiver per request; nesting the API's actor must not keep any connected."""
    client = api_client_for("editor")
    client.post("/models", new_model(name="warm-up"), format="json")
    before = len(pre_save._live_receivers(LogEntry)[0])
    for index in range(3):
        assert client.post("/models", new_model(name=f"m-{index}"), format="json").status_code == 201
    assert len(pre_save._live_receivers(LogEntry)[0]) == before


def test_registering_a_model_ignores_ids_in_its_new_endpoints(api_client_for: ClientFor) -> None:
    # Found by make fuzz: {"id": null} in a new model's endpoint was a 500.
    body = new_model(endpoints=[{"id": None, "endpoint_type": "rest", "endpoint_url": "http://gpu-1:8000/v1"}])
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201, response.content
    assert len(response.json()["endpoints"]) == 1


def test_registering_a_model_ignores_any_id_in_its_new_endpoints(api_client_for: ClientFor) -> None:
    # Found by make fuzz: an id is documented as ignored on create, but {"id": 0} was refused.
    body = new_model(endpoints=[{"id": 0, "endpoint_type": "rest", "endpoint_url": "http://gpu-1:8000/v1"}])
    response = api_client_for("editor").post("/models", body, format="json")
    assert response.status_code == 201, response.content
    assert len(response.json()["endpoints"]) == 1


def test_a_price_beyond_the_decimal_context_is_a_400_naming_the_field(api_client_for: ClientFor) -> None:
    # Found by the schema fuzz test on PostgreSQL: rounding -1e22 to 6 decimals raised InvalidOperation (500).
    response = api_client_for("editor").post("/models", new_model(input_cost_per_mtok=-1e22), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["input_cost_per_mtok"]


def test_deleting_a_capability_or_an_endpoint_is_audited_under_its_models_name(api_client_for: ClientFor) -> None:
    """Issue 23, item 6d: the audit log named such rows "model 51: code" rather than by their model."""
    model = RegisteredModelFactory(name="gpt-4o")
    ModelCapabilityFactory(model=model, capability="code")
    endpoint = ModelEndpointFactory(model=model, endpoint_type="rest")
    editor = api_client_for("editor")

    assert editor.delete(f"/models/{model.pk}/capabilities/code").status_code == 204
    assert editor.delete(f"/models/{model.pk}/endpoints/{endpoint.pk}").status_code == 204

    deleted = set(LogEntry.objects.filter(action=LogEntry.Action.DELETE).values_list("object_repr", flat=True))
    assert deleted == {"gpt-4o: code", "gpt-4o: rest endpoint"}
