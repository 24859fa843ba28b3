"""Secrets at rest: no plaintext in the database, and key and salt rotation keep them readable."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection

from discovery.models import ProviderSource
from registry.models import ModelEndpoint
from tests.factories import ModelEndpointFactory, ProviderSourceFactory

pytestmark = pytest.mark.django_db

API_KEY = "sk-live-plaintext-0123456789"
HEADER = "Bearer header-plaintext-abcdef"
SOURCE_KEY = "sk-ant-source-plaintext-42"
KEY_A = "secret-key-A-0123456789abcdefghijklmnopqrstuvwxyz"
KEY_B = "secret-key-B-zyxwvutsrqponmlkjihgfedcba9876543210"

ENCRYPTED = [
    ModelEndpoint._meta.get_field("api_key"),
    ModelEndpoint._meta.get_field("secret_headers"),
    ProviderSource._meta.get_field("api_key"),
]


def forget_derived_keys() -> None:
    """The library caches the keys derived from the settings on each field: drop them after a change."""
    for field in ENCRYPTED:
        field.__dict__.pop("keys", None)
        field.__dict__.pop("f", None)


@pytest.fixture
def keys(settings) -> Iterator[object]:
    forget_derived_keys()
    yield settings
    forget_derived_keys()


def raw_row(table: str, columns: str, pk: int) -> tuple[str, ...]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test constants
        return tuple(cursor.fetchone())


def test_no_plaintext_secret_is_stored() -> None:
    endpoint = ModelEndpointFactory(api_key=API_KEY, secret_headers={"Authorization": HEADER})
    source = ProviderSourceFactory(api_key=SOURCE_KEY)

    api_key, headers = raw_row("model_endpoints", "api_key, secret_headers", endpoint.pk)
    (source_key,) = raw_row("provider_sources", "api_key", source.pk)

    # Fernet tokens; in the headers, each value is one (the header names stay readable).
    headers_map = headers if isinstance(headers, dict) else json.loads(headers)
    for stored in (api_key, headers_map["Authorization"], source_key):
        assert stored.startswith("gAAAAA")
    assert API_KEY not in api_key
    assert "header-plaintext" not in json.dumps(headers_map)
    assert SOURCE_KEY not in source_key


def test_secrets_read_back_decrypted() -> None:
    endpoint = ModelEndpointFactory(api_key=API_KEY, secret_headers={"Authorization": HEADER})

    fresh = ModelEndpoint.objects.get(pk=endpoint.pk)

    assert fresh.api_key == API_KEY
    assert fresh.secret_headers == {"Authorization": HEADER}


def test_a_value_written_under_the_old_key_reads_after_rotation(keys) -> None:
    keys.SECRET_KEY = KEY_A
    keys.SECRET_KEY_FALLBACKS = []
    endpoint = ModelEndpointFactory(api_key=API_KEY, secret_headers={"Authorization": HEADER})

    keys.SECRET_KEY = KEY_B
    keys.SECRET_KEY_FALLBACKS = [KEY_A]
    forget_derived_keys()

    fresh = ModelEndpoint.objects.get(pk=endpoint.pk)
    assert fresh.api_key == API_KEY
    assert fresh.secret_headers == {"Authorization": HEADER}


def test_without_the_old_key_a_value_is_unreadable(keys) -> None:
    keys.SECRET_KEY = KEY_A
    keys.SECRET_KEY_FALLBACKS = []
    endpoint = ModelEndpointFactory(api_key=API_KEY)

    keys.SECRET_KEY = KEY_B
    forget_derived_keys()

    # The library hands back the ciphertext when no key fits: never the plaintext.
    assert ModelEndpoint.objects.get(pk=endpoint.pk).api_key.startswith("gAAAAA")


def test_reencrypting_leaves_unreadable_values_as_they_are(keys) -> None:
    keys.SECRET_KEY = KEY_A
    endpoint = ModelEndpointFactory(api_key=API_KEY, secret_headers={"Authorization": HEADER})
    before = raw_row("model_endpoints", "api_key, secret_headers", endpoint.pk)

    keys.SECRET_KEY = KEY_B  # A is lost: nothing can read these values any more
    forget_derived_keys()
    call_command("reencrypt_secrets", stdout=io.StringIO())

    assert raw_row("model_endpoints", "api_key, secret_headers", endpoint.pk) == before


def test_reencrypting_lets_the_old_key_be_dropped(keys) -> None:
    keys.SECRET_KEY = KEY_A
    keys.SECRET_KEY_FALLBACKS = []
    endpoint = ModelEndpointFactory(api_key=API_KEY, secret_headers={"Authorization": HEADER})
    source = ProviderSourceFactory(api_key=SOURCE_KEY)
    before = raw_row("model_endpoints", "api_key", endpoint.pk)

    keys.SECRET_KEY = KEY_B
    keys.SECRET_KEY_FALLBACKS = [KEY_A]
    forget_derived_keys()
    out = io.StringIO()
    call_command("reencrypt_secrets", stdout=out)

    keys.SECRET_KEY_FALLBACKS = []
    forget_derived_keys()
    assert raw_row("model_endpoints", "api_key", endpoint.pk) != before
    assert ModelEndpoint.objects.get(pk=endpoint.pk).api_key == API_KEY
    assert ModelEndpoint.objects.get(pk=endpoint.pk).secret_headers == {"Authorization": HEADER}
    assert ProviderSource.objects.get(pk=source.pk).api_key == SOURCE_KEY
    assert "registry.ModelEndpoint: 1 rows re-encrypted" in out.getvalue()
    assert "discovery.ProviderSource: 1 rows re-encrypted" in out.getvalue()


def test_a_value_written_under_the_old_salt_reads_after_salt_rotation(keys) -> None:
    keys.SALT_KEY = ["salt-old"]
    source = ProviderSourceFactory(api_key=SOURCE_KEY)

    keys.SALT_KEY = ["salt-new", "salt-old"]
    forget_derived_keys()
    assert ProviderSource.objects.get(pk=source.pk).api_key == SOURCE_KEY

    # New writes use the first salt: readable once the old salt is gone.
    source.save()
    keys.SALT_KEY = ["salt-new"]
    forget_derived_keys()
    assert ProviderSource.objects.get(pk=source.pk).api_key == SOURCE_KEY
