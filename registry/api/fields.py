"""The API's shared fields: strict scalars (no number where a string is due), header maps, JSON
objects, redacted URLs, and the query-string serializer base.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, ClassVar

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.api.validators import (
    CAPABILITY_NAME,
    HEADER_NAME,
    INT32_MAX,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    UNSTORABLE_TEXT,
    VISIBLE_TEXT_PATTERN,
    is_storable_text,
)
from registry.catalog.credentials import redact_text
from registry.models import (
    RegisteredModel,
)


class StrictSerializerMixin:
    """Reject fields the serializer does not know, and text no database column takes, naming each field.

    A number where a string is due is refused by the string fields themselves (``StrictCharField``,
    which the model fields of a ``ModelSerializer`` map to here, and the text fields built on it), so
    the rule holds at any depth, in lists and nested objects too.
    """

    serializer_field_mapping: ClassVar[dict[Any, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mapping = getattr(cls, "serializer_field_mapping", None)
        if mapping is not None:
            # A model's text columns become strict string fields, like the declared ones.
            cls.serializer_field_mapping = {
                **mapping,
                **{field: StrictCharField for field, built in mapping.items() if built is serializers.CharField},
            }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known: Mapping[str, Any] = getattr(self, "fields")  # noqa: B009 (the serializer's, not the mixin's)
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(known))}
            for name, value in data.items():
                if name not in errors and not is_storable_text(value):
                    errors[name] = [UNSTORABLE_TEXT]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(serializers.CharField):
    """A JSON string: DRF would store the number 0 as "0". The one way the API refuses a number where a
    string is due.

    ``max_length`` bounds the string as sent, as the schema's ``maxLength`` says: DRF checks it after
    trimming, so a short value padded with any amount of whitespace would pass.
    """

    default_error_messages = {"invalid": "Expected a string."}

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


class RedactedURLField(StrictCharField):
    """A URL that is shown with any credential-like part (user info, ?api_key=...) replaced by ``***``.

    The API refuses such URLs; ones that arrived through the environment, the admin or before the
    check are still never shown in clear.
    """

    def to_representation(self, value: Any) -> str:
        return redact_text(super().to_representation(value))


class RecordedSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="How many records were stored.")


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


class PatternTextField(StrictCharField):
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
