"""Representations and input validation of the REST API.

Writes are strict: a field the serializer does not know is an error (a typo is not silently
lost), values are checked against the rules of the issue, and nothing reaches the database until
the whole body is valid. Fields that only appear in representations (``id``, ``available``, ...)
are accepted and ignored on input, so that a client can send back what it read.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.api.evidence import CapabilityEvidenceField, CapabilityEvidenceMapField, EvidenceSerializer
from registry.credentials import redact_text, url_credentials
from registry.models import (
    PLATFORM_DETAILS_KEY,
    AuthType,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPerformance,
    ModelPrice,
    ModelStatus,
    ModelType,
    ModelUsage,
    Provider,
    RegisteredModel,
)
from registry.selection import CHECKS as SELECTION_CHECKS
from registry.selectors import is_model_id, runtime_rows_of, runtime_summary

# Path words after a model's name: a name may not contain them as a segment, or its URLs would be ambiguous.
SUB_RESOURCES = ("capabilities", "parameters", "performance", "usage", "endpoints", "prices")
RESERVED_NAMES = ("select",)
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
    r"^(?![0-9]+$)(?!select$)(?!/)(?!.*/$)(?!.*//)"
    r"(?!.*/(?:capabilities|parameters|performance|usage|endpoints)(?:/|$))"
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


class StrictSerializerMixin:
    """Reject fields the serializer does not know, and text no database column takes, naming each field."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known: Mapping[str, Any] = getattr(self, "fields")  # noqa: B009 (the serializer's, not the mixin's)
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(known))}
            for name, value in data.items():
                if name not in errors and not is_storable_text(value):
                    errors[name] = [UNSTORABLE_TEXT]
                elif (
                    name not in errors
                    and isinstance(known.get(name), serializers.CharField)
                    and value is not None
                    and not isinstance(value, str)
                ):
                    # DRF would store 0 as "0": the schema says a string, so a number is an error.
                    errors[name] = ["Expected a string."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(serializers.CharField):
    """A JSON string: DRF would store the number 0 as "0" (StrictSerializerMixin checks only top-level fields).

    ``max_length`` bounds the string as sent, as the schema's ``maxLength`` says: DRF checks it after
    trimming, so a short value padded with any amount of whitespace would pass.
    """

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number: no strings, no booleans, nothing infinite."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: ``true`` or ``false``, not 0, 1 or "yes" (the schema says boolean, so does the service)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class RoundedDecimalField(serializers.DecimalField):
    """A JSON number stored with ``decimal_places`` decimals: rounded to them, not refused for having more.

    Clients send floats (0.1 + 0.2 is 0.30000000000000004); refusing their 17th decimal would turn a
    valid price into a 400. The bounds apply to the value sent, before rounding, as the schema's
    minimum and maximum say (-0.0000001 is negative, although it rounds to 0).
    """

    def validate_precision(self, value: Decimal) -> Decimal:
        if value.is_finite():
            if self.min_value is not None and value < self.min_value:
                self.fail("min_value", min_value=self.min_value)
            if self.max_value is not None and value > self.max_value:
                self.fail("max_value", max_value=self.max_value)
        if self.decimal_places is not None and value.is_finite():
            try:
                value = value.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=ROUND_HALF_EVEN)
            except InvalidOperation:
                # More digits than the decimal context holds (-1e22 with 6 places): far past max_digits.
                self.fail("max_digits", max_digits=self.max_digits)
        return super().validate_precision(value)


ROUNDED = "USD; rounded to 6 decimal places."


def price_per_mtok_field(**kwargs: Any) -> RoundedDecimalField:
    """A price per million tokens as the models table keeps it: USD, 6 decimals, not negative."""
    options: dict[str, Any] = {
        "max_digits": 12,
        "decimal_places": 6,
        "min_value": 0,
        "required": False,
        "allow_null": True,
        "coerce_to_string": False,
        "help_text": "USD; rounded to 6 decimal places.",
    }
    return RoundedDecimalField(**{**options, **kwargs})


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer that fits the database's 32-bit columns: no strings, no booleans, no fractions.

    An integral number written with a fraction (``600.0``) is an integer, as JSON Schema counts
    them (and as the schema's ``type: integer`` then promises).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", INT32_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


_HEADER_VALUE = {"type": "string", "maxLength": MAX_HEADER_VALUE, "pattern": "^[^\\r\\n\\u0000]*$"}


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": HEADER_NAME.pattern},
        "additionalProperties": _HEADER_VALUE,
        "maxProperties": MAX_HEADERS,
    }
)
class HeaderMapField(serializers.Field):
    """A flat object of HTTP header names to string values, safe to send on the wire."""

    default_error_messages = {"invalid": "Expected an object of header names to string values."}

    def __init__(self, *, allow_null_values: bool = False, **kwargs: Any) -> None:
        self.allow_null_values = allow_null_values
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str | None]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > MAX_HEADERS:
            raise serializers.ValidationError(f"At most {MAX_HEADERS} headers.")
        errors: dict[str, str] = {}
        for name, value in data.items():
            if not HEADER_NAME.fullmatch(name):
                errors[name] = "Not a valid header name (letters, digits and !#$%&'*+.^_`|~- only)."
            elif value is None and self.allow_null_values:
                continue
            elif not isinstance(value, str):
                errors[name] = "Header values must be strings."
            elif "\r" in value or "\n" in value or "\0" in value:
                errors[name] = "Header values may not contain CR, LF or NUL."
            elif len(value) > MAX_HEADER_VALUE:
                errors[name] = f"At most {MAX_HEADER_VALUE} characters."
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)

    def to_representation(self, value: Any) -> dict[str, str]:
        return dict(value or {})


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": HEADER_NAME.pattern},
        "additionalProperties": {**_HEADER_VALUE, "type": ["string", "null"]},
        "maxProperties": MAX_HEADERS,
    }
)
class SecretHeaderMapField(HeaderMapField):
    """Secret headers: a name set to null removes that header."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null_values=True, **kwargs)


# "not null" rather than a list of the other types: generated clients (openapi-python-client) cannot
# type a list of types holding both object and array, and would drop every schema that uses it.
@extend_schema_field({"not": {"type": "null"}})
class NonNullJSONField(serializers.JSONField):
    """Any JSON value but null (the schema says so: found by make fuzz, null was documented and refused)."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": "Facts the provider reported; a JSON object (at most 16 KiB). Text in it, keys included, "
        "may not contain NUL characters or unpaired surrogates (the database stores neither): a 400 naming the field.",
    }
)
class JSONObjectField(serializers.JSONField):
    """A JSON object (of at most 16 KiB; ``validate_details`` checks)."""


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": CAPABILITY_NAME.pattern, "maxLength": 50},
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    },
)
class CapabilityMapField(serializers.Field):
    """A model's capabilities as ``{"code": 0.92, "text": 0.8}``."""

    default_error_messages = {"invalid": "Expected an object of capability names to scores."}

    def get_attribute(self, instance: RegisteredModel) -> dict[str, float]:
        return {row.capability: row.capability_score for row in instance.capabilities.all()}

    def to_representation(self, value: dict[str, float]) -> dict[str, float]:
        return dict(value)

    def to_internal_value(self, data: Any) -> dict[str, float]:
        if not isinstance(data, dict):
            self.fail("invalid")
        errors: dict[str, str] = {}
        for name, score in data.items():
            if len(name) > 50 or not CAPABILITY_NAME.fullmatch(name):
                errors[name] = "Capability names are lower-case slugs of at most 50 characters."
            elif isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
                errors[name] = "Scores are numbers."
            elif not 0 <= score <= 1:
                errors[name] = "Scores are between 0 and 1."
        if errors:
            raise serializers.ValidationError(errors)
        return {name: float(score) for name, score in data.items()}


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


class RedactedURLField(serializers.CharField):
    """A URL that is shown with any credential-like part (user info, ?api_key=...) replaced by ``***``.

    The API refuses such URLs; ones that arrived through the environment, the admin or before the
    check are still never shown in clear.
    """

    def to_representation(self, value: Any) -> str:
        return redact_text(super().to_representation(value))


class EndpointSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """Where a model is called. Credentials are write-only: the response says what is set, never the value."""

    id = serializers.IntegerField(
        required=False, allow_null=True, help_text="Ignored on create; in a model's endpoints, which one to update."
    )
    endpoint_url = RedactedURLField(
        max_length=255,
        required=False,
        allow_null=True,
        validators=[URLValidator(instead="api_key or secret_headers")],
        help_text="http(s) only; no credentials in it (user info, ?api_key=..., #token=...): "
        "use api_key or secret_headers.",
    )
    auth_type = serializers.ChoiceField(choices=AuthType.choices, required=False, allow_null=True)
    headers = HeaderMapField(
        required=False,
        allow_null=True,
        help_text="Headers sent with each call. Credential-like ones (Authorization, *key*, *token*, *session*, "
        "...) are moved to the encrypted secret headers and only their names are shown.",
    )
    secret_headers = SecretHeaderMapField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Write-only, encrypted: each name set to a value is stored, set to null is removed; "
        "null clears them all. Headers not named keep their stored values.",
    )
    api_key = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=4096,
        write_only=True,
        trim_whitespace=False,
        help_text="Write-only, encrypted. Omit to keep the stored key; null or empty clears it.",
    )
    has_api_key = serializers.SerializerMethodField()
    secret_header_names = serializers.SerializerMethodField()
    source = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)  # type: ignore[assignment,var-annotated]

    class Meta:
        model = ModelEndpoint
        fields = [
            "id",
            "endpoint_type",
            "endpoint_url",
            "auth_type",
            "headers",
            "secret_headers",
            "api_key",
            "has_api_key",
            "secret_header_names",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_has_api_key(self, endpoint: ModelEndpoint) -> bool:
        return bool(endpoint.api_key)

    def get_secret_header_names(self, endpoint: ModelEndpoint) -> list[str]:
        return sorted(endpoint.secret_headers or {})

    def validate_endpoint_url(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 (raises ValueError on a malformed port)
        except ValueError as exc:  # "http://[::1/", "http://h:99999/"
            raise serializers.ValidationError("Not a valid URL.") from exc
        if parts.scheme not in {"http", "https"}:
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        if not host:
            raise serializers.ValidationError("The URL needs a host.")
        if _has_control_or_space(value):
            raise serializers.ValidationError("URLs may not contain whitespace or control characters.")
        refuse_url_credentials(value, instead="api_key or secret_headers")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(set(attrs.get("headers") or {}) | set(attrs.get("secret_headers") or {})) > MAX_HEADERS:
            raise serializers.ValidationError({"headers": [f"At most {MAX_HEADERS} headers in all."]})
        return attrs


class ParameterSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A tunable parameter; added or updated by ``parameter_name``."""

    parameter_name = serializers.CharField(max_length=100, validators=[RegexValidator(PARAMETER_NAME.pattern)])
    default_value = NonNullJSONField(
        help_text="Any JSON value but null. Text in it, and in the bounds, may not contain NUL characters or "
        "unpaired surrogates (the database stores neither): a 400 naming the field."
    )
    min_value = serializers.JSONField(required=False, allow_null=True)
    max_value = serializers.JSONField(required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)

    class Meta:
        model = ModelParameter
        fields = ["parameter_name", "default_value", "min_value", "max_value", "description", "set_by"]
        read_only_fields = ["set_by"]

    def validate_parameter_name(self, value: str) -> str:
        if not PARAMETER_NAME.fullmatch(value):
            raise serializers.ValidationError("Letters, digits and '_', '.', ':', '-' only, starting with a letter.")
        return value

    def validate_default_value(self, value: Any) -> Any:
        if value is None:
            raise serializers.ValidationError("A default value is required (null is not one).")
        json_size_check(value)
        return value

    def validate_min_value(self, value: Any) -> Any:
        json_size_check(value)
        return value

    def validate_max_value(self, value: Any) -> Any:
        json_size_check(value)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default = attrs.get("default_value")
        errors: dict[str, list[str]] = {}
        for bound in ("min_value", "max_value"):
            value = attrs.get(bound)
            if value is not None and json_type(value) != json_type(default):
                kind = json_type(default)
                errors[bound] = [f"Must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, like default_value."]
        if errors:
            raise serializers.ValidationError(errors)
        if json_type(default) == "number":
            low, high = attrs.get("min_value"), attrs.get("max_value")
            if low is not None and high is not None and low > high:
                raise serializers.ValidationError({"min_value": ["Must not be greater than max_value."]})
            if low is not None and default < low:
                raise serializers.ValidationError({"default_value": ["Must not be less than min_value."]})
            if high is not None and default > high:
                raise serializers.ValidationError({"default_value": ["Must not be greater than max_value."]})
        return attrs


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


class CapabilitySerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """One capability of a model and its 0-1 score; added or updated by name."""

    capability = serializers.CharField(
        max_length=50,
        validators=[
            RegexValidator(CAPABILITY_NAME.pattern, "Capability names are lower-case slugs starting with a letter.")
        ],
    )
    capability_score = StrictFloatField(min_value=0.0, max_value=1.0)
    evidence = CapabilityEvidenceField(
        required=False,
        help_text="What the score rests on. On input, optional: the operator's note, as a string or as "
        '{"note": ...}; the source of a score set here is always "operator".',
    )

    class Meta:
        model = ModelCapability
        fields = ["capability", "capability_score", "set_by", "evidence"]
        read_only_fields = ["set_by"]

    def validate_capability(self, value: str) -> str:
        if not CAPABILITY_NAME.fullmatch(value):
            raise serializers.ValidationError("Capability names are lower-case slugs (a-z, 0-9, '-', '_').")
        return value


class RuntimeSerializer(serializers.Serializer):
    """What the model's Ollama hosts last said about it in memory (``GET /api/ps``), over all its hosts."""

    loaded = serializers.BooleanField(help_text="Loaded on at least one host at the last check.")
    size_vram = serializers.IntegerField(
        allow_null=True,
        help_text="Bytes in GPU memory, on the loaded host that keeps it longest; null when not loaded.",
    )
    context_length = serializers.IntegerField(
        allow_null=True,
        help_text="Context the host allocated, in tokens (not the model's maximum); "
        "null when not loaded or not reported.",
    )
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When that host unloads it if unused; null when not loaded or not reported."
    )
    checked_at = serializers.DateTimeField(help_text="When a host of the model was last asked.")


class RegisteredModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A model as routers read it: capabilities as a mapping, parameters, endpoints, status and availability."""

    # Not trimmed: a name with a leading or trailing space is refused rather than silently changed.
    name = serializers.CharField(min_length=1, max_length=100, trim_whitespace=False, validators=[ModelNameValidator()])
    display_name = serializers.CharField(
        min_length=1,
        max_length=200,
        validators=[validate_printable, RegexValidator(VISIBLE_TEXT_PATTERN, "Must hold a visible character.")],
        help_text="Leading and trailing whitespace is removed.",
    )
    provider = serializers.ChoiceField(choices=Provider.choices)
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    version = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)
    status = serializers.ChoiceField(choices=ModelStatus.choices, required=False)
    available = serializers.BooleanField(read_only=True)
    context_window = StrictIntegerField(min_value=1, required=False, allow_null=True)
    input_cost_per_mtok = price_per_mtok_field()
    output_cost_per_mtok = price_per_mtok_field()
    details = JSONObjectField(required=False, help_text="Facts the provider reported; a JSON object.")
    source = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)  # type: ignore[assignment,var-annotated]
    capabilities = CapabilityMapField(required=False)
    capability_evidence = CapabilityEvidenceMapField()
    parameters = ParameterSerializer(many=True, read_only=True)
    endpoints = EndpointSerializer(many=True, required=False)
    runtime = serializers.SerializerMethodField(
        help_text="What Ollama has loaded now; null when no host of the model was ever asked. Read-only."
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "display_name",
            "provider",
            "model_type",
            "version",
            "description",
            "status",
            "available",
            "context_window",
            "input_cost_per_mtok",
            "output_cost_per_mtok",
            "details",
            "source",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
            "capabilities",
            "capability_evidence",
            "parameters",
            "endpoints",
            "runtime",
        ]
        read_only_fields = ["id", "first_seen_at", "last_seen_at", "created_at", "updated_at"]

    @extend_schema_field(RuntimeSerializer(allow_null=True))
    def get_runtime(self, model: RegisteredModel) -> dict[str, Any] | None:
        summary = runtime_summary(runtime_rows_of(model))
        return None if summary is None else dict(RuntimeSerializer(summary).data)

    def validate_details(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        json_size_check(value)
        validate_platform_overrides(value.get(PLATFORM_DETAILS_KEY))
        return value

    def validate_endpoints(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 endpoints.")
        instance = self.instance if isinstance(self.instance, RegisteredModel) else None
        if instance is None:
            # A new model has no endpoints to update: each item creates one, and an id is ignored (as documented).
            return [{key: item_value for key, item_value in item.items() if key != "id"} for item in value]
        known = {endpoint.pk for endpoint in instance.endpoints.all()}
        for item in value:
            if item.get("id") is not None and item["id"] not in known:
                raise serializers.ValidationError(f"Endpoint {item['id']} is not an endpoint of this model.")
        return value


class UsageRecordSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """Usage over a moment: requests, tokens, errors, mean latency (seconds) and cost (USD).

    Without a ``cost``, the registry computes one from the price in force at ``timestamp``.
    """

    timestamp = serializers.DateTimeField(required=False, validators=[not_in_future], help_text="Defaults to now.")
    token_count = StrictIntegerField(
        min_value=0,
        max_value=INT32_MAX,
        required=False,
        allow_null=True,
        help_text="Total tokens; when input_tokens or output_tokens are given it is their sum (and may be left out).",
    )
    input_tokens = StrictIntegerField(min_value=0, max_value=INT32_MAX, required=False, allow_null=True)
    output_tokens = StrictIntegerField(min_value=0, max_value=INT32_MAX, required=False, allow_null=True)
    request_count = StrictIntegerField(min_value=0, required=False, default=1)
    average_latency = StrictFloatField(
        min_value=0.0, max_value=MAX_LATENCY_SECONDS, required=False, allow_null=True, help_text="Seconds."
    )
    error_count = StrictIntegerField(min_value=0, required=False, default=0)
    cost = RoundedDecimalField(
        max_digits=10,
        decimal_places=6,
        min_value=0,
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="USD; rounded to 6 decimal places.",
    )

    class Meta:
        model = ModelUsage
        fields = [
            "timestamp",
            "token_count",
            "input_tokens",
            "output_tokens",
            "request_count",
            "average_latency",
            "error_count",
            "cost",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        input_tokens, output_tokens = attrs.get("input_tokens"), attrs.get("output_tokens")
        if input_tokens is None and output_tokens is None:
            return attrs
        total = (input_tokens or 0) + (output_tokens or 0)
        if total > INT32_MAX:
            raise serializers.ValidationError({"input_tokens": [f"input_tokens + output_tokens exceeds {INT32_MAX}."]})
        if attrs.get("token_count") is not None and attrs["token_count"] != total:
            raise serializers.ValidationError(
                {"token_count": [f"Must be input_tokens + output_tokens ({total}) when they are given."]}
            )
        return attrs


class PriceSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A model's price per million tokens from ``effective_from`` on (USD)."""

    # Rounded to 6 decimals as a model's prices are (found by make fuzz: 0.23681619526312872 was refused).
    input_per_mtok = RoundedDecimalField(
        max_digits=12, decimal_places=6, min_value=0, max_value=999999, coerce_to_string=False, help_text=ROUNDED
    )
    output_per_mtok = RoundedDecimalField(
        max_digits=12, decimal_places=6, min_value=0, max_value=999999, coerce_to_string=False, help_text=ROUNDED
    )
    effective_from = serializers.DateTimeField(
        required=False, help_text="When the price takes effect; defaults to now. May be in the past or the future."
    )
    in_force = serializers.SerializerMethodField(help_text="Whether this is the price in force now.")

    class Meta:
        model = ModelPrice
        fields = ["id", "input_per_mtok", "output_per_mtok", "effective_from", "set_by", "created_at", "in_force"]
        read_only_fields = ["id", "set_by", "created_at", "in_force"]

    @extend_schema_field(serializers.BooleanField())
    def get_in_force(self, obj: ModelPrice) -> bool:
        return bool(self.context.get("in_force_id") == obj.pk)


# Metric names whose values are amounts that cannot be negative.
_NON_NEGATIVE_METRIC = re.compile(r"latency|cost|count|tokens|duration|time", re.I)


class PerformanceRecordSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """One measurement of a model, optionally for a task category."""

    timestamp = serializers.DateTimeField(required=False, validators=[not_in_future], help_text="Defaults to now.")
    metric_name = serializers.CharField(
        min_length=1,
        max_length=100,
        validators=[validate_printable, RegexValidator(VISIBLE_TEXT_PATTERN, "Must hold a visible character.")],
    )
    metric_value = StrictFloatField(min_value=-MAX_METRIC_MAGNITUDE, max_value=MAX_METRIC_MAGNITUDE)
    task_category = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    sample_size = StrictIntegerField(min_value=1, required=False, allow_null=True)

    class Meta:
        model = ModelPerformance
        fields = ["id", "timestamp", "metric_name", "metric_value", "task_category", "sample_size"]
        read_only_fields = ["id"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if _NON_NEGATIVE_METRIC.search(attrs["metric_name"]) and attrs["metric_value"] < 0:
            raise serializers.ValidationError({"metric_value": ["A latency, cost, count or duration is not negative."]})
        return attrs


class RecordedSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="How many records were stored.")


# --- Query parameters ------------------------------------------------------------------------------


EMPTY_PARAMETER = "May not be empty; leave the parameter out instead."
REPEATED_PARAMETER = "Give this parameter once (it takes one value)."


class QuerySerializer(serializers.Serializer):
    """Query parameters as the schema states them, each refused with a 400 naming it rather than guessed at.

    An empty value (``?status=``) is not read as absent, and a parameter that takes one value given
    twice (``?offset=1&offset=2``) is not read as its last one: the caller meant something, and
    reading it as something else would answer another question. Only list parameters repeat.
    """

    def to_internal_value(self, data: Any) -> Any:
        getlist = getattr(data, "getlist", None)
        if getlist is not None:
            errors: dict[str, list[str]] = {}
            for name, field in self.fields.items():
                values = getlist(name) if name in data else []
                if any(value == "" for value in values):
                    errors[str(name)] = [EMPTY_PARAMETER]
                elif len(values) > 1 and not isinstance(field, serializers.ListField):
                    errors[str(name)] = [REPEATED_PARAMETER]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class PatternTextField(serializers.CharField):
    """Text that matches ``pattern``, the one the schema states, as received and whole.

    Checked before DRF trims it (Python counts some control characters, ``\\x1c`` to ``\\x1f``, as
    whitespace and would trim them away) and with ``fullmatch`` (``re.search``'s ``$`` would let a
    trailing newline through): the schema and the service then refuse the same values.
    """

    def __init__(self, *, pattern: str, message: str, **kwargs: Any) -> None:
        self.whole = re.compile(pattern)
        self.message = message
        kwargs["validators"] = [*kwargs.get("validators", []), RegexValidator(pattern, message)]
        super().__init__(**kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str) and data and not self.whole.fullmatch(data):
            raise serializers.ValidationError(self.message)
        return super().run_validation(data)


class QueryTextField(PatternTextField):
    """Search or filter text in a query: printable (no control character) and holding a visible character."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            pattern=VISIBLE_TEXT_PATTERN, message="No control characters, and at least one visible character.", **kwargs
        )


class ModelListQuerySerializer(QuerySerializer):
    ORDERINGS = ["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at", "provider", "-provider"]

    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    model_type = serializers.ChoiceField(choices=ModelType.choices, required=False)
    status = serializers.ChoiceField(choices=ModelStatus.choices, required=False)
    available = serializers.BooleanField(required=False, allow_null=True, default=None)
    capability = serializers.CharField(
        required=False, max_length=50, validators=[RegexValidator(CAPABILITY_NAME.pattern, "Not a capability name.")]
    )
    min_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.0)
    search = QueryTextField(required=False, max_length=200)
    ordering = serializers.ChoiceField(choices=ORDERINGS, required=False, default="name")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, help_text="Page size (default 50).")
    offset = serializers.IntegerField(required=False, min_value=0, max_value=INT32_MAX)


class ModelSelectQuerySerializer(QuerySerializer):
    capability = serializers.ListField(
        child=serializers.CharField(max_length=50, validators=[RegexValidator(CAPABILITY_NAME.pattern)]),
        required=False,
        default=list,
        help_text="Repeat for several.",
    )
    min_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.0)
    model_type = serializers.ChoiceField(choices=ModelType.choices, required=False)
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    local_only = serializers.BooleanField(required=False, default=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=10)

    def validate_capability(self, value: list[str]) -> list[str]:
        bad = [name for name in value if not CAPABILITY_NAME.fullmatch(name)]
        if bad:
            raise serializers.ValidationError(f"Not capability names: {', '.join(bad)}.")
        return value


class RankingSerializer(serializers.Serializer):
    score = serializers.FloatField(allow_null=True, help_text="Mean score on the requested capabilities.")
    capabilities = serializers.DictField(child=serializers.FloatField())
    recent_latency = serializers.FloatField(allow_null=True, help_text="Request-weighted, last 24 h, seconds.")
    cost_per_mtok = serializers.FloatField(allow_null=True, help_text="Mean of input and output price, USD.")


class SelectionItemSerializer(serializers.Serializer):
    model = RegisteredModelSerializer()
    ranking = RankingSerializer()


class SelectionSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = SelectionItemSerializer(many=True)


class TimeRangeQuerySerializer(QuerySerializer):
    # "from" is a Python keyword: declared through the fields mapping below.
    to = serializers.DateTimeField(required=False, help_text="End (exclusive); default now.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False, help_text="Start (inclusive).")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("from") is not None and attrs.get("to") is not None and attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"from": ["Must be before 'to'."]})
        return attrs


class UsageQuerySerializer(TimeRangeQuerySerializer):
    MAX_RANGE = {"hour": timedelta(days=93), "day": timedelta(days=3660)}

    bucket = serializers.ChoiceField(choices=["hour", "day"], required=False, default="hour")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        end = attrs.get("to") or timezone.now()
        default_span = timedelta(hours=24) if attrs["bucket"] == "hour" else timedelta(days=30)
        try:
            start = attrs.get("from") or end - default_span
        except OverflowError as exc:
            raise serializers.ValidationError({"to": ["Too early to have a default 'from'."]}) from exc
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before 'to'."]})
        if end - start > self.MAX_RANGE[attrs["bucket"]]:
            raise serializers.ValidationError(
                {"from": [f"At most {self.MAX_RANGE[attrs['bucket']].days} days of {attrs['bucket']} buckets."]}
            )
        return {"bucket": attrs["bucket"], "start": start, "end": end}


class PerformanceQuerySerializer(TimeRangeQuerySerializer):
    metric_name = QueryTextField(required=False, max_length=100)
    task_category = QueryTextField(required=False, max_length=100)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)


class UsageFiguresSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    # Shadows Serializer.errors only in the class body: DRF's metaclass moves declared fields out of it.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    error_rate = serializers.FloatField()
    average_latency = serializers.FloatField(allow_null=True, help_text="Request-weighted, seconds.")
    cost = serializers.DecimalField(
        max_digits=20, decimal_places=6, coerce_to_string=False, help_text="Reported, computed and estimated, USD."
    )
    uncosted_requests = serializers.IntegerField(
        help_text="Requests of records without a cost (no tokens, or no price known at their time)."
    )


class UsageBucketSerializer(UsageFiguresSerializer):
    start = serializers.DateTimeField()


class UsageSummarySerializer(serializers.Serializer):
    model = serializers.CharField()
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    totals = UsageFiguresSerializer()
    buckets = UsageBucketSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields


class MetricSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()


class PerformanceSummarySerializer(serializers.Serializer):
    model = serializers.CharField()
    records = PerformanceRecordSerializer(many=True)
    summary = serializers.DictField(child=MetricSummarySerializer(), help_text="Per metric, over the filtered set.")


# --- Explainable selection (POST /models/select) -----------------------------------------------------

MAX_SELECTION_CAPABILITIES = 20
MAX_SELECTION_EXCLUDES = 1000


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": CAPABILITY_NAME.pattern, "maxLength": 50},
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        "minProperties": 1,
        "maxProperties": MAX_SELECTION_CAPABILITIES,
    },
)
class CapabilityMinimumsField(CapabilityMapField):
    """The capabilities a selection requires, each with its minimum score: ``{"code": 0.7}``."""

    def to_internal_value(self, data: Any) -> dict[str, float]:
        minimums = super().to_internal_value(data)
        if not minimums:
            raise serializers.ValidationError("Name at least one capability, with its minimum score.")
        if len(minimums) > MAX_SELECTION_CAPABILITIES:
            raise serializers.ValidationError(f"At most {MAX_SELECTION_CAPABILITIES} capabilities.")
        return minimums


class CostCeilingSerializer(StrictSerializerMixin, serializers.Serializer):
    input = price_per_mtok_field(allow_null=False, help_text="Highest input price accepted, USD per million tokens.")
    output = price_per_mtok_field(allow_null=False, help_text="Highest output price accepted, USD per million tokens.")


class SelectionRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    """What a router needs from a model; every field but ``capabilities`` is optional."""

    capabilities = CapabilityMinimumsField(help_text="Required capabilities, each with its minimum score (0-1).")
    min_context = StrictIntegerField(
        required=False, min_value=1, help_text="Smallest context window accepted, in tokens (unknown windows fail)."
    )
    max_cost_per_mtok = CostCeilingSerializer(
        required=False,
        help_text="Price ceilings. A cloud model without a known price fails them; a local one without one is free.",
    )
    max_latency_p95 = StrictFloatField(
        required=False,
        min_value=0.0,
        help_text="Highest p95 of recent usage's latency, seconds (models without recent usage pass).",
    )
    max_error_rate = StrictFloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Highest error rate of recent usage, errors / requests (models without recent usage pass).",
    )
    local_only = StrictBooleanField(required=False, default=False, help_text="Only models the platform serves.")
    prefer_loaded = StrictBooleanField(
        required=False, default=False, help_text="Rank models Ollama has loaded now before the others."
    )
    exclude = serializers.ListField(
        child=StrictCharField(
            max_length=100, validators=[RegexValidator(NONBLANK_TEXT_PATTERN, "Not a model name or id.")]
        ),
        required=False,
        default=list,
        max_length=MAX_SELECTION_EXCLUDES,
        help_text="Models (names or ids) to leave out.",
    )
    limit = StrictIntegerField(
        required=False, min_value=1, max_value=50, default=5, help_text="Length of the chain (primary + fallbacks)."
    )


class SelectedCapabilitySerializer(serializers.Serializer):
    score = serializers.FloatField()
    minimum = serializers.FloatField(help_text="The minimum the request asked for.")
    evidence = EvidenceSerializer(help_text="Where the score comes from (as in the model's capability_evidence).")


class SelectedPriceSerializer(serializers.Serializer):
    input_per_mtok = serializers.FloatField(allow_null=True)
    output_per_mtok = serializers.FloatField(allow_null=True)


class RecentLatencySerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="p95 of the usage records' mean latency, seconds.")
    records = serializers.IntegerField(help_text="Usage records with a latency in the window.")
    window_hours = serializers.FloatField()


class RecentErrorRateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="errors / requests; null without recent usage.")
    requests = serializers.IntegerField()
    # Shadows Serializer.errors only in the class body: DRF's metaclass moves declared fields out of it.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    window_hours = serializers.FloatField()


class ChainEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 for the primary, then the fallbacks in order.")
    id = serializers.IntegerField()
    name = serializers.CharField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    score = serializers.FloatField(help_text="Mean score on the requested capabilities.")
    capabilities = serializers.DictField(child=SelectedCapabilitySerializer())
    context_window = serializers.IntegerField(allow_null=True)
    price = SelectedPriceSerializer()
    latency_p95 = RecentLatencySerializer()
    error_rate = RecentErrorRateSerializer()
    local = serializers.BooleanField(help_text="Served by the platform (not a provider's cloud).")
    loaded = serializers.BooleanField(help_text="Loaded by Ollama now, on some host.")
    runtime = RuntimeSerializer(allow_null=True, help_text="What Ollama has loaded now, as on the model.")
    endpoints = EndpointSerializer(many=True)


class ExcludedModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    check = serializers.ChoiceField(
        choices=list(SELECTION_CHECKS),
        help_text="The first check the model failed, in the order the checks run.",
    )
    reason = serializers.CharField(help_text="That check's failure, in a sentence with the figures.")


class ExplainedSelectionSerializer(serializers.Serializer):
    chain = ChainEntrySerializer(many=True, help_text="Ranked: the primary first, then the fallbacks in order.")
    excluded = ExcludedModelSerializer(
        many=True, help_text="Every other model, with the one reason it is not in the chain."
    )
