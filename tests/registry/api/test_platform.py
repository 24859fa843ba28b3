"""The platform profile and trusted networks, request by request (the client address set with REMOTE_ADDR).

The router's whole conversation over real HTTP is in test_platform_router.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from registry.access.read_counts import read_counts_flush
from registry.api.platform import views as platform
from registry.models import ModelUsage, TrustedNetworkRead
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    RegisteredModelFactory,
)
from tests.registry.api.test_schema import assert_matches_schema
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
INSIDE = "10.20.30.40"
OUTSIDE = "192.0.2.7"


@pytest.fixture
def openapi_with_profile(settings: Any) -> dict[str, Any]:
    settings.PLATFORM_API_COMPAT = "alfred"
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _profile(settings: Any) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = ["10.0.0.0/8"]
    settings.PLATFORM_TRUSTED_PROXIES = []


@pytest.fixture
def coder() -> Any:
    model = RegisteredModelFactory(name="qwen2.5-coder:7b", input_cost_per_mtok="0.5", output_cost_per_mtok="1.5")
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    ModelCapabilityFactory(model=model, capability="image", capability_score=0.6)
    return model


def anonymous() -> APIClient:
    return APIClient()


def _trusted_count(network: str, method: str) -> float:
    value = REGISTRY.get_sample_value("registry_trusted_network_requests_total", {"network": network, "method": method})
    return value or 0.0


# --- Trusted networks ----------------------------------------------------------------------------


def test_a_request_without_a_token_from_a_trusted_network_reads_as_the_service_role(coder: Any) -> None:
    assert anonymous().get("/api/v1/models", REMOTE_ADDR=INSIDE).status_code == 200
    # The unprefixed API trusts the same networks.
    assert anonymous().get("/models", REMOTE_ADDR=INSIDE).status_code == 200


def test_a_request_without_a_token_from_outside_is_refused_in_json(coder: Any) -> None:
    response = anonymous().get("/api/v1/models", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_no_network_is_trusted_by_default(coder: Any, settings: Any) -> None:
    settings.PLATFORM_TRUSTED_NETWORKS = []
    assert anonymous().get("/api/v1/models", REMOTE_ADDR="127.0.0.1").status_code == 401


def test_a_bad_token_from_a_trusted_network_is_still_refused(coder: Any) -> None:
    client = anonymous()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert client.get("/api/v1/models", REMOTE_ADDR=INSIDE).status_code == 401


def test_a_valid_token_from_a_trusted_network_keeps_its_own_role(coder: Any) -> None:
    client = anonymous()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {platform_token('service_role')}")
    response = client.post(
        "/api/v1/models",
        {"name": "x", "display_name": "X", "provider": "custom", "model_type": "chat"},
        format="json",
        REMOTE_ADDR=INSIDE,
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/models"),
        ("patch", "/api/v1/models/qwen2.5-coder:7b"),
        ("delete", "/api/v1/models/qwen2.5-coder:7b"),
        ("post", "/api/v1/models/qwen2.5-coder:7b/capabilities"),
        ("post", "/api/v1/models/qwen2.5-coder:7b/performance"),
        ("post", "/models/qwen2.5-coder:7b/performance"),
    ],
)
def test_the_trusted_network_may_not_write_anything_but_usage(coder: Any, method: str, path: str) -> None:
    body = {"capability": "text", "capability_score": 0.5, "metric_name": "latency", "metric_value": 1.0}
    response = getattr(anonymous(), method)(path, body, format="json", REMOTE_ADDR=INSIDE)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"


def test_the_trusted_network_may_not_read_what_only_admins_read(coder: Any) -> None:
    assert anonymous().get("/api/v1/sources", REMOTE_ADDR=INSIDE).status_code == 403
    assert anonymous().get("/api/v1/audit", REMOTE_ADDR=INSIDE).status_code == 403


def test_a_forwarded_address_is_ignored_without_a_trusted_proxy(coder: Any) -> None:
    response = anonymous().get("/api/v1/models", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR=INSIDE)
    assert response.status_code == 401


def test_a_trusted_proxy_forwards_the_clients_address(coder: Any, settings: Any) -> None:
    settings.PLATFORM_TRUSTED_PROXIES = ["172.28.0.2/32"]
    via_proxy = {"REMOTE_ADDR": "172.28.0.2"}
    assert anonymous().get("/api/v1/models", HTTP_X_FORWARDED_FOR=INSIDE, **via_proxy).status_code == 200
    assert anonymous().get("/api/v1/models", HTTP_X_FORWARDED_FOR=OUTSIDE, **via_proxy).status_code == 401
    # What a client wrote to the left of the proxy's own entry is not believed.
    spoofed = f"{INSIDE}, {OUTSIDE}"
    assert anonymous().get("/api/v1/models", HTTP_X_FORWARDED_FOR=spoofed, **via_proxy).status_code == 401
    assert anonymous().get("/api/v1/models", HTTP_X_FORWARDED_FOR="bogus", **via_proxy).status_code == 401
    # A proxy is not a trusted client for being a proxy, even one inside a trusted network.
    settings.PLATFORM_TRUSTED_PROXIES = ["10.9.9.9/32"]
    assert anonymous().get("/api/v1/models", REMOTE_ADDR="10.9.9.9").status_code == 401
    assert anonymous().get("/api/v1/models", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 401
    assert anonymous().get("/api/v1/models", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR=INSIDE).status_code == 200


def test_an_ipv4_peer_seen_by_a_dual_stack_socket_matches_ipv4_networks(coder: Any) -> None:
    assert anonymous().get("/api/v1/models", REMOTE_ADDR=f"::ffff:{INSIDE}").status_code == 200


def test_every_trusted_request_is_counted_reads_and_usage_posts_alike_and_none_audited_one_by_one(
    coder: Any, api_client_for: ClientFor
) -> None:
    before_get, before_post = _trusted_count("10.0.0.0/8", "GET"), _trusted_count("10.0.0.0/8", "POST")
    anonymous().get(f"/api/v1/models/{coder.pk}/capabilities", REMOTE_ADDR=INSIDE)
    anonymous().post(f"/api/v1/models/{coder.pk}/usage", {"request_id": "r1"}, format="json", REMOTE_ADDR=INSIDE)
    anonymous().get("/api/v1/models", REMOTE_ADDR=OUTSIDE)  # refused: neither counted nor audited
    read_counts_flush()

    assert _trusted_count("10.0.0.0/8", "GET") - before_get == 1
    assert _trusted_count("10.0.0.0/8", "POST") - before_post == 1
    # Each request is a count of its client, method, route and minute; no audit entry per request.
    assert sorted(
        (r.client_address, r.network, r.method, r.route, r.count) for r in TrustedNetworkRead.objects.all()
    ) == [
        (INSIDE, "10.0.0.0/8", "GET", "/api/v1/models/{ref}/capabilities", 1),
        (INSIDE, "10.0.0.0/8", "POST", "/api/v1/models/{ref}/usage", 1),
    ]
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()
    # Admins find both among the counts, the post told apart from a read.
    reads = api_client_for("admin").get("/audit/reads", {"client": INSIDE})
    assert sorted((row["route"], row["summary"].split(" ")[1]) for row in reads.json()["results"]) == [
        ("/api/v1/models/{ref}/capabilities", "read"),
        ("/api/v1/models/{ref}/usage", "sent"),
    ]


@pytest.mark.parametrize(
    ("ref", "route"),
    [
        ("%00", "/api/v1/models/{ref}"),
        ("%ED%A0%80", "/api/v1/models/{ref}"),
        ("a%00b/usage", "/api/v1/models/{ref}/usage"),
    ],
)
def test_a_path_no_column_can_hold_is_still_counted_and_a_json_404(ref: str, route: str) -> None:
    response = anonymous().get(f"/api/v1/models/{ref}", REMOTE_ADDR=INSIDE)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    read_counts_flush()
    # Counted under its route's pattern, which holds nothing of the path the client sent.
    assert list(TrustedNetworkRead.objects.values_list("route", "count")) == [(route, 1)]


# --- Shapes ---------------------------------------------------------------------------------------


def test_the_capability_flags_follow_the_configured_threshold(coder: Any, settings: Any) -> None:
    settings.PLATFORM_CAPABILITY_THRESHOLD = 0.7
    caps = anonymous().get(f"/api/v1/models/{coder.pk}/capabilities", REMOTE_ADDR=INSIDE).json()
    assert (caps["code"], caps["image"], caps["audio"]) == (True, False, False)
    assert "image_analysis" not in caps["task_types"]
    assert caps["content_types"] == ["code", "text"]


def test_task_and_content_types_follow_the_type_and_capabilities(coder: Any) -> None:
    caps = anonymous().get(f"/api/v1/models/{coder.pk}/capabilities", REMOTE_ADDR=INSIDE).json()
    assert caps["task_types"] == ["chat", "code_generation", "image_analysis", "text_generation"]
    assert caps["content_types"] == ["code", "image", "text"]
    assert caps["pricing"] == {"input": 0.0005, "output": 0.0015, "per_tokens": 1000, "currency": "USD"}


def test_an_operator_overrides_task_and_content_types_in_details(coder: Any, api_client_for: ClientFor) -> None:
    overrides = {"platform": {"task_types": ["code_review"], "content_types": ["text"]}}
    patched = api_client_for("editor").patch(f"/models/{coder.pk}", {"details": overrides}, format="json")
    assert patched.status_code == 200
    caps = anonymous().get(f"/api/v1/models/{coder.pk}/capabilities", REMOTE_ADDR=INSIDE).json()
    assert (caps["task_types"], caps["content_types"]) == (["code_review"], ["text"])


@pytest.mark.parametrize(
    "overrides",
    [{"task_types": "chat"}, {"task_types": [1]}, {"tasks": ["chat"]}, ["chat"]],
)
def test_malformed_overrides_are_refused_naming_the_field(
    coder: Any, api_client_for: ClientFor, overrides: Any
) -> None:
    response = api_client_for("editor").patch(
        f"/models/{coder.pk}", {"details": {"platform": overrides}}, format="json"
    )
    assert response.status_code == 400
    assert "platform" in response.json()["details"]


def nulls(value: Any, path: str = "") -> list[str]:
    """Where ``value`` holds a null, by path; a model's ``details`` (the provider's JSON, as stored) aside."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() if key != "details" for found in nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in nulls(item, f"{path}[{index}]")]
    return []


def test_a_model_leaves_out_what_is_unknown_instead_of_sending_null() -> None:
    """The router's defaults apply to missing keys only: a null price breaks its cost estimate."""
    model = RegisteredModelFactory(name="plain:latest", version=None, description=None, details={"quant": None})
    ModelEndpointFactory(model=model, endpoint_type="local", endpoint_url=None, auth_type=None)
    ModelParameterFactory(model=model, min_value=None, max_value=None, description=None)
    body = anonymous().get(f"/api/v1/models/{model.pk}", REMOTE_ADDR=INSIDE).json()
    for key in ("endpoint_url", "auth_required", "version", "description", "input_cost_per_mtok", "runtime"):
        assert key not in body, key
    assert {"per_tokens": 1000, "currency": "USD"} == body["capabilities"]["pricing"]
    assert nulls(body) == []
    assert body["details"] == {"quant": None}  # the provider's facts as they were reported
    assert body["endpoints"][0]["endpoint_type"] == "local"
    caps = anonymous().get(f"/api/v1/models/{model.pk}/capabilities", REMOTE_ADDR=INSIDE).json()
    assert caps["pricing"] == {"per_tokens": 1000, "currency": "USD"}
    listing = anonymous().get("/api/v1/models", REMOTE_ADDR=INSIDE).json()
    assert nulls(listing) == []


def test_a_model_with_one_price_sends_that_one() -> None:
    model = RegisteredModelFactory(name="half:latest", input_cost_per_mtok="3", output_cost_per_mtok=None)
    caps = anonymous().get(f"/api/v1/models/{model.pk}/capabilities", REMOTE_ADDR=INSIDE).json()
    assert caps["pricing"] == {"input": 0.003, "per_tokens": 1000, "currency": "USD"}


@pytest.mark.parametrize(("auth_type", "expected"), [("api_key", True), ("oauth", True), ("none", False)])
def test_auth_required_follows_the_primary_endpoints_auth_type(coder: Any, auth_type: str, expected: bool) -> None:
    ModelEndpointFactory(model=coder, endpoint_url=None, auth_type="api_key")  # not the primary: it has no URL
    ModelEndpointFactory(model=coder, endpoint_url="http://first:11434", auth_type=auth_type)
    body = anonymous().get(f"/api/v1/models/{coder.pk}", REMOTE_ADDR=INSIDE).json()
    assert body["auth_required"] is expected
    listed = anonymous().get("/api/v1/models", REMOTE_ADDR=INSIDE).json()
    assert [model["auth_required"] for model in listed] == [expected]


def test_auth_required_is_left_out_when_the_auth_type_is_unknown(coder: Any) -> None:
    ModelEndpointFactory(model=coder, endpoint_url="http://first:11434", auth_type=None)
    body = anonymous().get(f"/api/v1/models/{coder.pk}", REMOTE_ADDR=INSIDE).json()
    assert body["endpoint_url"] == "http://first:11434"
    assert "auth_required" not in body


def test_the_primary_endpoint_is_the_first_with_a_url(coder: Any) -> None:
    ModelEndpointFactory(model=coder, endpoint_type="local", endpoint_url=None)
    ModelEndpointFactory(model=coder, endpoint_url="http://first:11434")
    ModelEndpointFactory(model=coder, endpoint_url="http://second:11434")
    assert anonymous().get(f"/api/v1/models/{coder.pk}", REMOTE_ADDR=INSIDE).json()["endpoint_url"] == (
        "http://first:11434"
    )


def test_the_primary_endpoint_url_is_shown_without_its_credentials(coder: Any) -> None:
    """A URL stored with a credential (from the admin, the environment, or before the API refused them) is redacted,
    as in the endpoints themselves."""
    ModelEndpointFactory(model=coder, endpoint_url="http://user:hunter2@first:11434/v1?api_key=sk-live-1")
    for path in (f"/api/v1/models/{coder.pk}", "/api/v1/models"):
        response = anonymous().get(path, REMOTE_ADDR=INSIDE)
        assert "hunter2" not in response.content.decode(), path
        assert "sk-live-1" not in response.content.decode(), path
    body = anonymous().get(f"/api/v1/models/{coder.pk}", REMOTE_ADDR=INSIDE).json()
    assert body["endpoint_url"] == "http://***@first:11434/v1?api_key=***"


def test_the_plain_list_takes_the_registrys_filters(coder: Any) -> None:
    RegisteredModelFactory(name="other:latest")
    body = anonymous().get("/api/v1/models", {"capability": "code", "min_score": 0.8}, REMOTE_ADDR=INSIDE).json()
    assert [model["name"] for model in body] == ["qwen2.5-coder:7b"]
    bad = anonymous().get("/api/v1/models", {"min_score": 7}, REMOTE_ADDR=INSIDE)
    assert bad.status_code == 400
    assert "min_score" in bad.json()


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/models/{pk}", "/api/v1/models/{pk}/capabilities"])
def test_a_deployment_that_changes_the_shapes_serves_none_of_the_old_ones(
    coder: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Cached bodies and their ETags outlive a deployment until a model is written: they name the code too."""
    url = path.format(pk=coder.pk)
    first = anonymous().get(url, REMOTE_ADDR=INSIDE)
    assert anonymous().get(url, HTTP_IF_NONE_MATCH=first["ETag"], REMOTE_ADDR=INSIDE).status_code == 304
    monkeypatch.setattr(platform, "SHAPE", "next-deployment")
    again = anonymous().get(url, HTTP_IF_NONE_MATCH=first["ETag"], REMOTE_ADDR=INSIDE)
    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]


def test_the_plain_list_costs_the_same_queries_for_5_and_40_models(
    django_assert_max_num_queries: Any, coder: Any
) -> None:
    for index in range(40):
        model = RegisteredModelFactory(name=f"bulk-{index}:latest")
        ModelCapabilityFactory(model=model, capability="text")
        ModelEndpointFactory(model=model)
    # Four for the models and their related rows (plus the cache's); the trusted request writes nothing.
    with django_assert_max_num_queries(7):
        response = anonymous().get("/api/v1/models", REMOTE_ADDR=INSIDE)
    assert len(response.json()) == 41


# --- The router's metrics ------------------------------------------------------------------------


def _post_usage(model: Any, body: Any) -> Any:
    return anonymous().post(f"/api/v1/models/{model.pk}/usage", body, format="json", REMOTE_ADDR=INSIDE)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tokens": 3}, "tokens"),
        ({"success": "yes"}, "success"),
        ({"latency": -1}, "latency"),
        ({"content_token_count": 1.5}, "content_token_count"),
        ({"content_types": "text"}, "content_types"),
        ({"content_types": [7]}, "content_types"),
        ({"latency": 86_400.5}, "latency"),
        ({"cost": "free"}, "cost"),
        ({"model_id": "someone-else"}, "model_id"),
        ({"content_token_count": 2**31 - 1, "response_token_count": 2}, "response_token_count"),
    ],
)
def test_a_malformed_metric_is_a_400_naming_the_field(coder: Any, body: dict[str, Any], field: str) -> None:
    response = _post_usage(coder, body)
    assert response.status_code == 400
    assert field in response.json()
    assert not ModelUsage.objects.exists()


def test_only_stored_metrics_are_counted_in_the_usage_metrics(
    coder: Any, django_capture_on_commit_callbacks: Any
) -> None:
    labels = {"model": coder.name}
    before = REGISTRY.get_sample_value("registry_usage_requests_total", labels) or 0.0
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert _post_usage(coder, {"request_id": "once", "success": False}).status_code == 200
    assert (REGISTRY.get_sample_value("registry_usage_requests_total", labels) or 0.0) - before == 1
    assert ModelUsage.objects.get().error_count == 1


def test_the_model_id_may_be_the_id_or_the_name(coder: Any) -> None:
    assert _post_usage(coder, {"model_id": coder.pk, "request_id": "a"}).status_code == 200
    assert _post_usage(coder, {"model_id": coder.name, "request_id": "b"}).status_code == 200
    assert ModelUsage.objects.count() == 2


def test_a_batch_stores_each_request_id_once(coder: Any) -> None:
    body = [{"request_id": "x", "content_token_count": 1}, {"request_id": "x"}, {"request_id": "y"}, {}]
    assert _post_usage(coder, body).json() == {"recorded": 3, "duplicates": 1}
    assert _post_usage(coder, body).json() == {"recorded": 1, "duplicates": 3}  # only the id-less record again
    assert ModelUsage.objects.filter(request_id="x").get().token_count == 1


def test_the_same_request_id_on_two_models_is_two_records(coder: Any) -> None:
    fallback = RegisteredModelFactory(name="fallback:latest")
    assert _post_usage(coder, {"request_id": "r", "success": False}).json()["recorded"] == 1
    assert _post_usage(fallback, {"request_id": "r"}).json()["recorded"] == 1
    assert ModelUsage.objects.filter(request_id="r").count() == 2


def test_metrics_for_an_unknown_model_are_a_json_404(coder: Any) -> None:
    response = anonymous().post("/api/v1/models/nope:latest/usage", {}, format="json", REMOTE_ADDR=INSIDE)
    assert response.status_code == 404
    assert response.json() == {"detail": "No such model."}


# --- /api/v1/ itself -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/no/such/thing", "/api/v1/", "/api/v1"])
def test_any_unknown_path_under_v1_is_a_json_404(method: str, path: str, api_client_for: ClientFor) -> None:
    response = getattr(api_client_for("viewer"), method)(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_unexpected_failure_under_v1_is_a_json_500(coder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the database went away mid-query")

    monkeypatch.setattr(platform, "models_filtered", broken)
    response = anonymous().get("/api/v1/models", REMOTE_ADDR=INSIDE)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert "database" not in response.content.decode()


def test_v1_without_the_profile_is_the_same_api(coder: Any, settings: Any, api_client_for: ClientFor) -> None:
    settings.PLATFORM_API_COMPAT = ""
    client = api_client_for("viewer")
    usage = f"/models/{coder.pk}/usage?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"
    for path in ("/models", f"/models/{coder.pk}", f"/models/{coder.pk}/capabilities", usage):
        assert client.get(f"/api/v1{path}").json() == client.get(path).json(), path


PROFILE_OPERATIONS = {
    ("get", "/api/v1/models"),
    ("get", "/api/v1/models/{ref}"),
    ("get", "/api/v1/models/{ref}/capabilities"),
    ("post", "/api/v1/models/{ref}/usage"),
}


def _schema(client: APIClient) -> dict[str, Any]:
    return client.get("/api/schema", HTTP_ACCEPT="application/json").json()  # type: ignore[no-any-return]


def test_the_schema_documents_each_operation_once(api_client_for: ClientFor, settings: Any) -> None:
    """/api/v1/X is /X again, documented at /X; with the profile on, the four operations it changes are its own."""
    settings.PLATFORM_API_COMPAT = ""
    paths = _schema(api_client_for("viewer"))["paths"]
    assert "/models" in paths
    assert not [path for path in paths if path.startswith("/api/v1/")]
    settings.PLATFORM_API_COMPAT = "alfred"
    paths = _schema(api_client_for("viewer"))["paths"]
    documented = {(method, path) for path, operations in paths.items() for method in operations}
    assert {operation for operation in documented if operation[1].startswith("/api/v1/")} == PROFILE_OPERATIONS


def test_the_schema_says_unknown_keys_of_the_profile_are_optional_and_never_null(api_client_for: ClientFor) -> None:
    openapi = _schema(api_client_for("viewer"))
    components = openapi["components"]["schemas"]

    def resolved(schema: dict[str, Any]) -> dict[str, Any]:
        """The component ``schema`` names (as ``$ref``, or as the one branch of ``allOf``)."""
        while "$ref" in schema or len(schema.get("allOf", [])) == 1:
            schema = components[(schema.get("$ref") or schema["allOf"][0]["$ref"]).rsplit("/", 1)[-1]]
        return schema

    def admits_null(schema: Any) -> bool:
        """Whether ``schema`` (or a component it refers to, or a branch of it) lets a value be null."""
        if not isinstance(schema, dict):
            return False
        if "$ref" in schema and admits_null(resolved({"$ref": schema["$ref"]})):
            return True
        types = schema.get("type")
        return (
            types == "null"
            or (isinstance(types, list) and "null" in types)
            or None in schema.get("enum", [])
            or any(admits_null(branch) for key in ("oneOf", "anyOf", "allOf") for branch in schema.get(key, []))
        )

    def response(path: str) -> dict[str, Any]:
        return resolved(openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])

    model = response("/api/v1/models/{ref}")
    assert response("/api/v1/models")["type"] == "array"  # a plain list, no pagination object
    assert resolved(response("/api/v1/models")["items"]) == model
    for key in ("endpoint_url", "auth_required", "version", "description", "context_window", "runtime", "source"):
        assert key in model["properties"], key
        assert key not in model.get("required", []), key
        assert not admits_null(model["properties"][key]), key
    assert {"id", "name", "active", "capabilities", "capability_scores"} <= set(model["required"])
    assert model["properties"]["auth_required"]["type"] == "boolean"
    endpoint = resolved(model["properties"]["endpoints"]["items"])
    assert "source" not in endpoint.get("required", [])
    assert not [name for name, schema in endpoint["properties"].items() if admits_null(schema)]
    capabilities = response("/api/v1/models/{ref}/capabilities")
    assert resolved(model["properties"]["capabilities"]) == capabilities
    pricing = resolved(capabilities["properties"]["pricing"])
    assert set(pricing["required"]) == {"per_tokens", "currency"}
    assert pricing["properties"]["input"]["type"] == "number"
    # The registry's own shapes keep their nulls.
    assert admits_null(components["RegisteredModel"]["properties"]["version"])
    assert admits_null(components["Endpoint"]["properties"]["source"])


def test_the_profiles_answers_match_the_schema(openapi_with_profile: dict[str, Any], coder: Any) -> None:
    bare = RegisteredModelFactory(name="bare:latest", version=None, details={"quant": None})
    ModelEndpointFactory(model=bare, endpoint_type="local", endpoint_url=None, auth_type=None)
    ModelParameterFactory(model=bare, min_value=None, max_value=None)
    ModelEndpointFactory(model=coder, endpoint_url="http://first:11434", auth_type="api_key")
    ModelCapabilityFactory(model=coder, capability="math", capability_score=0.9)  # beyond the vocabulary
    for template, path in [
        ("/api/v1/models", "/api/v1/models"),
        ("/api/v1/models/{ref}", f"/api/v1/models/{coder.pk}"),
        ("/api/v1/models/{ref}", f"/api/v1/models/{bare.pk}"),
        ("/api/v1/models/{ref}/capabilities", f"/api/v1/models/{coder.pk}/capabilities"),
        ("/api/v1/models/{ref}/capabilities", f"/api/v1/models/{bare.pk}/capabilities"),
    ]:
        response = anonymous().get(path, REMOTE_ADDR=INSIDE)
        assert_matches_schema(openapi_with_profile, "get", template, 200, response.json())
    posted = _post_usage(coder, {"request_id": "r", "latency": 1.0})
    assert_matches_schema(openapi_with_profile, "post", "/api/v1/models/{ref}/usage", 200, posted.json())


def test_the_schema_with_the_profile_validates_without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/models/{ref}/capabilities" in (tmp_path / "schema.yaml").read_text()
