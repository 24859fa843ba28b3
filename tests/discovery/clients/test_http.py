"""The provider transport: redirects refused, Retry-After forms, credentials kept out of messages."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from discovery.clients.base import ProviderError
from discovery.clients.http import ProviderHTTP, _retry_after_seconds, redacted_url
from tests.discovery.fakes.openai import FakeOpenAI


def test_redirect_is_refused_and_the_key_never_follows_it(fake_openai: FakeOpenAI) -> None:
    elsewhere = FakeOpenAI().start()
    try:
        fake_openai.fail_next("status", status=307, headers={"Location": f"{elsewhere.url}/v1/models"}, body={})
        http = ProviderHTTP(
            source_name="openai", base_url=f"{fake_openai.url}/v1", headers={"Authorization": "Bearer sk-x"}
        )

        with pytest.raises(ProviderError) as raised:
            http.get_json("/models")
    finally:
        elsewhere.stop()

    assert elsewhere.requests == []
    assert str(raised.value) == (
        f"source openai: GET {fake_openai.url}/v1/models answered HTTP 307, a redirect to {elsewhere.url}/v1/models; "
        "redirects are not followed (fix the source's base URL)"
    )


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    in_ten = format_datetime(timezone.now() + timedelta(seconds=10), usegmt=True)

    assert _retry_after_seconds("3") == 3.0
    assert 8.0 <= (_retry_after_seconds(in_ten) or 0) <= 10.0
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds(None) is None


def test_credentials_in_a_base_url_are_kept_out_of_messages(free_port: int) -> None:
    http = ProviderHTTP(source_name="proxy", base_url=f"http://user:hunter2@127.0.0.1:{free_port}")

    with pytest.raises(ProviderError) as raised:
        http.get_json("/api/tags")

    assert "hunter2" not in str(raised.value)
    assert f"GET http://127.0.0.1:{free_port}/api/tags could not be reached" in str(raised.value)


def test_redacted_url_leaves_a_plain_url_alone() -> None:
    assert redacted_url("https://api.openai.com/v1/models") == "https://api.openai.com/v1/models"
    assert redacted_url("http://u:p@h:1/x?y=1") == "http://h:1/x?y=1"
