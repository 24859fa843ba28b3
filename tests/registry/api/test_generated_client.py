"""A client generated from the OpenAPI schema by openapi-python-client drives a whole flow, errors included.

Every error answer must parse as the schema's Error (a generated client returns None, or raises, for
a status or body the schema does not describe).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator

from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
PACKAGE = "registry_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("client")
    schema_file = root / "schema.json"
    schema_file.write_text(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    generator = Path(sys.executable).parent / "openapi-python-client"
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema_file),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


@pytest.fixture
def wsgi() -> Iterator[httpx.WSGITransport]:
    # The WSGI handler closes the connection after each request; the test's transaction lives on it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield httpx.WSGITransport(app=get_wsgi_application())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def api(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_a_generated_client_drives_a_full_flow_with_errors(
    generated: ModuleType, wsgi: httpx.WSGITransport, settings
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth.models import Group

    user = UserFactory(username="flow", password="a-long-password-123")
    user.groups.add(Group.objects.get_or_create(name="editor")[0])
    models = importlib.import_module(f"{PACKAGE}.models")
    client_module = importlib.import_module(f"{PACKAGE}.client")
    anonymous = client_module.Client(
        base_url="http://testserver", httpx_args={"transport": wsgi}, raise_on_unexpected_status=True
    )
    login = api("auth.auth_token_create")

    wrong = login.sync_detailed(client=anonymous, body=models.TokenObtainRequest(username="flow", password="nope"))
    assert wrong.status_code == 401
    assert isinstance(wrong.parsed, models.Error)
    assert wrong.parsed.detail

    pair = login.sync(client=anonymous, body=models.TokenObtainRequest(username="flow", password="a-long-password-123"))
    assert isinstance(pair, models.TokenPair)
    verified = api("auth.auth_token_verify_create").sync_detailed(
        client=anonymous, body=models.TokenVerifyRequest(token=pair.access)
    )
    assert verified.status_code == 200
    assert verified.parsed is not None

    editor = client_module.AuthenticatedClient(
        base_url="http://testserver", token=pair.access, httpx_args={"transport": wsgi}, raise_on_unexpected_status=True
    )
    body = models.RegisteredModelRequest.from_dict(
        {
            "name": "flow-model:latest",
            "display_name": "Flow model",
            "provider": "ollama",
            "model_type": "chat",
            "capabilities": {"code": 0.9},
            "endpoints": [{"endpoint_type": "local", "endpoint_url": "http://gpu-1:11434/api/chat"}],
        }
    )
    created = api("models.models_create").sync_detailed(client=editor, body=body)
    assert created.status_code == 201
    assert isinstance(created.parsed, models.RegisteredModel)
    assert created.parsed.capabilities.to_dict() == {"code": 0.9}

    taken = api("models.models_create").sync_detailed(client=editor, body=body)
    assert taken.status_code == 409
    assert isinstance(taken.parsed, models.Error)
    assert taken.parsed.additional_properties["name"]

    invalid = api("models.models_create").sync_detailed(
        client=editor, body=models.RegisteredModelRequest.from_dict({**body.to_dict(), "name": "select"})
    )
    assert invalid.status_code == 400
    assert isinstance(invalid.parsed, models.Error)

    fetched = api("models.models_retrieve").sync(client=editor, ref="flow-model:latest")
    assert isinstance(fetched, models.RegisteredModel)
    assert fetched.display_name == "Flow model"
    patched = api("models.models_partial_update").sync(
        client=editor, ref=str(fetched.id), body=models.PatchedRegisteredModelRequest(description="patched")
    )
    assert isinstance(patched, models.RegisteredModel)
    assert patched.description == "patched"

    capability = api("models.models_capabilities_create").sync_detailed(
        client=editor, ref=str(fetched.id), body=models.CapabilityRequest(capability="tools", capability_score=0.7)
    )
    assert capability.status_code == 201
    listed = api("models.models_list").sync(client=editor)
    assert isinstance(listed, models.PaginatedRegisteredModelList)
    assert listed.count == 1

    missing = api("models.models_retrieve").sync_detailed(client=editor, ref="no-such-model")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    forbidden = api("models.models_destroy").sync_detailed(client=editor, ref=str(fetched.id))
    assert forbidden.status_code == 403
    assert isinstance(forbidden.parsed, models.Error)
    unauthenticated = api("models.models_list").sync_detailed(
        client=client_module.AuthenticatedClient(
            base_url="http://testserver", token="garbage", httpx_args={"transport": wsgi}
        )
    )
    assert unauthenticated.status_code == 401
    assert isinstance(unauthenticated.parsed, models.Error)
