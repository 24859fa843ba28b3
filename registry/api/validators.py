"""The API's input rules: the patterns, limits and validators every resource's fields share.

The console's forms run the same validators (through the serializers), so one rule holds everywhere.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import timedelta
from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from registry.catalog.credentials import url_credentials
from registry.catalog.validation import (
    CAPABILITY_NAME,
    MAX_JSON_BYTES,
    MODEL_NAME_PATTERN,
    PARAMETER_NAME,
    UNSTORABLE_TEXT,
    WHITESPACE,
    excluded_class,
    has_control_or_space,
    is_storable_text,
    model_name_problem,
    platform_override_problems,
)
from registry.models import (
    PLATFORM_DETAILS_KEY,
)

# The name, platform and storable-text rules are the domain's (registry.catalog.validation: a registry
# file checks them too); the API's serializers and fields import these from here, with the API's own rules.
__all__ = [
    "CAPABILITY_NAME",
    "PARAMETER_NAME",
    "UNSTORABLE_TEXT",
    "has_control_or_space",
    "is_storable_text",
]

# RFC 9110 token characters.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


# Any text: no NUL. (StrictSerializerMixin also refuses lone surrogates, which no JSON encoder
# produces from valid text and no regex dialect states the same way.)
_TEXT_CHAR = "[^\x00]"


TEXT_PATTERN = f"^{_TEXT_CHAR}*$"


# Text that must say something (a field that may not be blank; DRF trims surrounding whitespace).
_SOLID_CHAR = f"[^{excluded_class(WHITESPACE)}]"


NONBLANK_TEXT_PATTERN = f"^{_TEXT_CHAR}*{_SOLID_CHAR}{_TEXT_CHAR}*$"


# Printable text (validate_printable: no control character) that says something.
_PRINTABLE_CHAR = "[^\x00-\x1f\x7f-\x9f]"


VISIBLE_TEXT_PATTERN = f"^{_PRINTABLE_CHAR}*{_SOLID_CHAR}{_PRINTABLE_CHAR}*$"


# A label: starts and ends with a visible character, no control or format character anywhere.
_PLAIN_CHAR = f"[^{excluded_class()}]"


LABEL_PATTERN = f"^{_SOLID_CHAR}(?:{_PLAIN_CHAR}*{_SOLID_CHAR})?$"


# A TCP port, 0 to 65535 (leading zeros allowed, as urlsplit reads them).
_PORT = r"(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"


# http(s), a host name or IPv4 address, a port, then printable ASCII: the URLs the service calls.
URL_PATTERN = rf"^https?://[A-Za-z0-9._~-]+(?::{_PORT})?(?:[/?#][!-~]*)?$"


MAX_HEADERS = 50


MAX_HEADER_VALUE = 8192


MAX_FUTURE = timedelta(minutes=5)


MAX_BATCH = 1000


INT32_MAX = 2**31 - 1


# Bounds that keep every sum the statistics take finite (a float overflows past 1.8e308, and
# PostgreSQL refuses the overflow): a mean latency of a day at most, and a measurement of at most
# 1e15 either way, times 2**31 requests or samples, summed over billions of records, stays in range.
MAX_LATENCY_SECONDS = 86_400.0


MAX_METRIC_MAGNITUDE = 1e15


def validate_model_name(value: str) -> None:
    """Names are path segments of the API: printable, no whitespace, and never read as a route word."""
    problem = model_name_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)


class ModelNameValidator(RegexValidator):
    """validate_model_name's specific messages, and the one pattern the schema states (``MODEL_NAME_PATTERN``)."""

    def __init__(self) -> None:
        super().__init__(MODEL_NAME_PATTERN, "Not a valid model name.")

    def __call__(self, value: Any) -> None:
        validate_model_name(value)


def validate_printable(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise serializers.ValidationError("Control characters are not allowed.")


def validate_platform_overrides(value: Any) -> None:
    """``details.platform``: the operator's task and content types for the platform profile (docs/platform.md)."""
    problems = platform_override_problems(value)
    if None in problems:
        raise serializers.ValidationError({PLATFORM_DETAILS_KEY: [problems[None]]})
    if problems:
        raise serializers.ValidationError(
            {PLATFORM_DETAILS_KEY: {key: [problem] for key, problem in problems.items() if key is not None}}
        )


def json_size_check(value: Any) -> None:
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_JSON_BYTES:
        raise serializers.ValidationError(f"At most {MAX_JSON_BYTES // 1024} KiB of JSON.")


def not_in_future(value: Any) -> None:
    if value is not None and value > timezone.now() + MAX_FUTURE:
        raise serializers.ValidationError("May not be more than 5 minutes in the future.")


def refuse_url_credentials(value: str, *, instead: str) -> None:
    """A URL may not carry a credential in clear: it would be shown to every viewer and audited."""
    found = url_credentials(value)
    if found:
        raise serializers.ValidationError(
            f"The URL carries a credential ({', '.join(found)}); put it in {instead}, which are stored "
            "encrypted and never shown."
        )


class URLValidator(RegexValidator):
    """The schema's URL pattern; a URL carrying a credential is refused first, saying where it goes (``instead``)."""

    def __init__(self, *, instead: str) -> None:
        self.instead = instead
        super().__init__(URL_PATTERN, "Only http and https URLs with a host are allowed.")

    def __call__(self, value: Any) -> None:
        refuse_url_credentials(str(value), instead=self.instead)
        super().__call__(value)


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
