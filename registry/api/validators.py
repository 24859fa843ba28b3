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
from registry.catalog.selectors import is_model_id
from registry.models import (
    PLATFORM_DETAILS_KEY,
)

# Path words after a model's name: a name may not contain them as a segment, or its URLs would be ambiguous.
SUB_RESOURCES = ("capabilities", "parameters", "performance", "usage", "endpoints", "prices", "availability")


RESERVED_NAMES = ("select", "compare")


# Lower-case slugs starting with a letter ("0" or "-x" is no capability name).
CAPABILITY_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


PARAMETER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


# RFC 9110 token characters.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


_WHITESPACE = "".join(chr(code) for code in range(0x10000) if chr(code).isspace())


def _excluded_class(extra: str = "") -> str:
    """The inside of a regex character class of what a kind of text may not hold, valid in Python and ECMA-262.

    Control and format characters, line and paragraph separators, and ``extra`` on top. Only the
    Basic Multilingual Plane: the schema's patterns must read the same in every regex dialect, and
    the service checks with these same patterns.
    """
    excluded = [
        code
        for code in range(0x10000)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"} or chr(code) in extra
    ]
    ranges: list[list[int]] = []
    for code in excluded:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}" for a, b in ranges)


def _class_char(code: int) -> str:
    # Literal characters, not \\u escapes: regex dialects agree on literals, not on escapes
    # (schemathesis drops a pattern it cannot read as written).
    char = chr(code)
    return f"\\{char}" if char in "\\]^-[" else char


# Any text: no NUL. (StrictSerializerMixin also refuses lone surrogates, which no JSON encoder
# produces from valid text and no regex dialect states the same way.)
_TEXT_CHAR = "[^\x00]"


TEXT_PATTERN = f"^{_TEXT_CHAR}*$"


# Text that must say something (a field that may not be blank; DRF trims surrounding whitespace).
_SOLID_CHAR = f"[^{_excluded_class(_WHITESPACE)}]"


NONBLANK_TEXT_PATTERN = f"^{_TEXT_CHAR}*{_SOLID_CHAR}{_TEXT_CHAR}*$"


# Printable text (validate_printable: no control character) that says something.
_PRINTABLE_CHAR = "[^\x00-\x1f\x7f-\x9f]"


VISIBLE_TEXT_PATTERN = f"^{_PRINTABLE_CHAR}*{_SOLID_CHAR}{_PRINTABLE_CHAR}*$"


# A label: starts and ends with a visible character, no control or format character anywhere.
_PLAIN_CHAR = f"[^{_excluded_class()}]"


LABEL_PATTERN = f"^{_SOLID_CHAR}(?:{_PLAIN_CHAR}*{_SOLID_CHAR})?$"


# A model name as a regular expression: what validate_model_name accepts, stated in the schema.
MODEL_NAME_PATTERN = (
    r"^(?![0-9]+$)(?!select$)(?!compare$)(?!/)(?!.*/$)(?!.*//)"
    r"(?!.*/(?:capabilities|parameters|performance|usage|endpoints|availability)(?:/|$))"
    f"[^{_excluded_class(_WHITESPACE + '?#')}\\\\]+$"
)


MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


# A TCP port, 0 to 65535 (leading zeros allowed, as urlsplit reads them).
_PORT = r"(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"


# http(s), a host name or IPv4 address, a port, then printable ASCII: the URLs the service calls.
URL_PATTERN = rf"^https?://[A-Za-z0-9._~-]+(?::{_PORT})?(?:[/?#][!-~]*)?$"


MAX_HEADERS = 50


MAX_HEADER_VALUE = 8192


MAX_JSON_BYTES = 16 * 1024


MAX_FUTURE = timedelta(minutes=5)


MAX_BATCH = 1000


INT32_MAX = 2**31 - 1


# Bounds that keep every sum the statistics take finite (a float overflows past 1.8e308, and
# PostgreSQL refuses the overflow): a mean latency of a day at most, and a measurement of at most
# 1e15 either way, times 2**31 requests or samples, summed over billions of records, stays in range.
MAX_LATENCY_SECONDS = 86_400.0


MAX_METRIC_MAGNITUDE = 1e15


def _has_control_or_space(value: str) -> bool:
    return any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value)


def validate_model_name(value: str) -> None:
    """Names are path segments of the API: printable, no whitespace, and never read as a route word."""
    if _has_control_or_space(value):
        raise serializers.ValidationError("Names may not contain whitespace or control characters.")
    if is_model_id(value):
        raise serializers.ValidationError("A name may not be only digits: /models/{id} would read it as an id.")
    if value in RESERVED_NAMES:
        raise serializers.ValidationError(f"{value!r} is reserved by the API.")
    if any(ch in value for ch in "?#\\"):
        raise serializers.ValidationError("Names may not contain '?', '#' or '\\'.")
    segments = value.split("/")
    if any(segment == "" for segment in segments):
        raise serializers.ValidationError("Names may not start or end with '/' nor contain '//'.")
    if any(segment in SUB_RESOURCES for segment in segments[1:]):
        raise serializers.ValidationError(
            f"A segment after '/' may not be one of {', '.join(SUB_RESOURCES)}: the API's paths use these words."
        )
    if not MODEL_NAME.fullmatch(value):
        raise serializers.ValidationError("Names may not contain control or format characters.")


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
    if value is None:
        return
    if not isinstance(value, dict):
        raise serializers.ValidationError({PLATFORM_DETAILS_KEY: ["Must be an object."]})
    errors: dict[str, list[str]] = {}
    for key, item in value.items():
        if key not in {"task_types", "content_types"}:
            errors[key] = ["Unknown key: task_types and content_types only."]
        elif not isinstance(item, list) or not all(isinstance(word, str) and 0 < len(word) <= 100 for word in item):
            errors[key] = ["A list of words (strings of 1 to 100 characters)."]
        elif len(item) > 50:
            errors[key] = ["At most 50."]
    if errors:
        raise serializers.ValidationError({PLATFORM_DETAILS_KEY: errors})


def json_size_check(value: Any) -> None:
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_JSON_BYTES:
        raise serializers.ValidationError(f"At most {MAX_JSON_BYTES // 1024} KiB of JSON.")


def not_in_future(value: Any) -> None:
    if value is not None and value > timezone.now() + MAX_FUTURE:
        raise serializers.ValidationError("May not be more than 5 minutes in the future.")


UNSTORABLE_TEXT = "Text may not contain NUL characters or unpaired surrogates."


def is_storable_text(value: Any) -> bool:
    """False when ``value`` holds a string no database column takes: NUL, or an unpaired surrogate.

    JSON may carry both (``"\\u0000"``, ``"\\ud800"``); PostgreSQL refuses them, so they must be a 400
    here rather than a database error later.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(is_storable_text(key) and is_storable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return all(is_storable_text(item) for item in value)
    return True


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
