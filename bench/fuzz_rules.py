"""Rules across fields or parameters that the schema's operation descriptions state and JSON Schema cannot.

Decided from a request alone, independently of the service: ``documented_rule_broken`` says whether
a 400 is what an operation's description promises for that request (ENDPOINTS_RULE and
PARAMETER_BOUNDS_RULE in registry/api/catalog/views.py, USAGE_RANGE_RULE and PERFORMANCE_RANGE_RULE in
registry/api/telemetry/views.py, RECORDS_RULE in registry/api/viewsets.py; the audit log's ``since``
before ``until``, registry/api/operations/views.py; text in nested JSON without NUL or unpaired
surrogates, in the fields' descriptions). bench/fuzz_hooks.py
uses it; tests/registry/api/test_fuzz.py checks it against the service. No Django, no schemathesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# UsageQuerySerializer's defaults and limits, as USAGE_RANGE_RULE states them.
USAGE_DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
USAGE_MAX_RANGE = {"hour": timedelta(days=93), "day": timedelta(days=3660)}


def _moment(value: Any) -> datetime | None:
    """A query's date-time as the service reads it (no offset: UTC); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _usage_range_broken(case: Any, named: set[str]) -> bool:
    if not named <= {"from", "to"}:
        return False
    query = case.query or {}
    bucket = query.get("bucket", "hour")
    if bucket not in USAGE_MAX_RANGE:
        return False
    start, end = _moment(query.get("from")), _moment(query.get("to"))
    if ("from" in query and start is None) or ("to" in query and end is None):
        return False
    end = end or datetime.now(UTC)
    if start is None:
        try:
            start = end - USAGE_DEFAULT_SPAN[bucket]
        except OverflowError:
            return True  # "too early to have a default 'from'"
    # A request sent a moment after this check could cross a limit this check did not: a second of slack.
    return start >= end or end - start > USAGE_MAX_RANGE[bucket] - timedelta(seconds=1)


def _performance_range_broken(case: Any, named: set[str]) -> bool:
    query = case.query or {}
    start, end = _moment(query.get("from")), _moment(query.get("to"))
    return named == {"from"} and start is not None and end is not None and start >= end


def _audit_range_broken(case: Any, named: set[str]) -> bool:
    query = case.query or {}
    since, until = _moment(query.get("since")), _moment(query.get("until"))
    return named == {"until"} and since is not None and until is not None and since >= until


def _json_type(value: Any) -> str:
    # Written apart from registry.api.validators.json_type on purpose: this oracle judges the service's
    # answers, and one that shared the service's code would agree with the service's mistakes.
    kinds: tuple[tuple[str, type | tuple[type, ...]], ...] = (
        ("boolean", bool),
        ("number", (int, float)),
        ("string", str),
        ("array", list),
        ("object", dict),
    )
    return next((kind for kind, types in kinds if isinstance(value, types)), "null")


def _parameter_bounds_broken(case: Any, named: set[str]) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    if not named or not named <= {"min_value", "max_value", "default_value"} or "default_value" not in body:
        return False
    default = body["default_value"]
    low, high = body.get("min_value"), body.get("max_value")
    if any(bound is not None and _json_type(bound) != _json_type(default) for bound in (low, high)):
        return True
    if _json_type(default) != "number" or not all(math.isfinite(v) for v in (default, low or 0, high or 0)):
        return False
    return (
        (low is not None and high is not None and low > high)
        or (low is not None and default < low)
        or (high is not None and default > high)
    )


def _endpoint_ids_broken(case: Any, named: set[str], body: Any) -> bool:
    """An endpoint id the model does not have: only the service knows the model's ids, so the 400 must
    name one of the ids the request sent, and nothing else."""
    endpoints = case.body.get("endpoints") if isinstance(case.body, dict) else None
    if named != {"endpoints"} or not isinstance(endpoints, list):
        return False
    sent = {item["id"] for item in endpoints if isinstance(item, dict) and item.get("id") is not None}
    messages = body.get("endpoints") if isinstance(body.get("endpoints"), list) else []
    return bool(messages) and all(
        isinstance(message, str) and any(message == f"Endpoint {id_} is not an endpoint of this model." for id_ in sent)
        for message in messages
    )


# The service's messages for the two rules of any write below (registry/api/catalog/serializers.py).
UNSTORABLE_TEXT = "Text may not contain NUL characters or unpaired surrogates."
IN_THE_FUTURE = "May not be more than 5 minutes in the future."
MAX_FUTURE = timedelta(minutes=5)
INT32_MAX = 2**31 - 1


def _unstorable(value: Any) -> bool:
    """Whether ``value`` holds text the database cannot store: a NUL or an unpaired surrogate, keys included."""
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def _in_the_future(value: Any) -> bool:
    moment = _moment(value)
    # The service checked at its own time, a moment before this: ten seconds of slack.
    return moment is not None and moment > datetime.now(UTC) + MAX_FUTURE - timedelta(seconds=10)


def _record_errors(sent: Any, answer: dict[str, Any]) -> list[tuple[Any, str, Any]] | None:
    """(the record sent, a field, its messages) for every field the 400 names, of one record or of each
    record of a batch ({"3": {"timestamp": [...]}}); None when the answer is not shaped so."""
    if isinstance(sent, list):
        found = []
        for index, fields in answer.items():
            if not (index.isdigit() and int(index) < len(sent) and isinstance(fields, dict)):
                return None
            found += [(sent[int(index)], name, messages) for name, messages in fields.items()]
        return found
    if isinstance(sent, dict):
        return [(sent, name, messages) for name, messages in answer.items()]
    return None


def _integer(value: Any) -> int | None:
    """A JSON integer as the service reads one (600.0 included: StrictIntegerField); None otherwise."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tokens_rule_broken(record: dict[str, Any], messages: Any) -> bool:
    """A usage record's token_count that is not input_tokens + output_tokens, or a sum past INT32_MAX."""
    parts = [_integer(record.get("input_tokens")), _integer(record.get("output_tokens"))]
    if all(part is None for part in parts):
        return False
    total = sum(part or 0 for part in parts)
    if total > INT32_MAX:
        return messages == [f"input_tokens + output_tokens exceeds {INT32_MAX}."]
    given = _integer(record.get("token_count"))
    return (
        given is not None
        and given != total
        and messages == [f"Must be input_tokens + output_tokens ({total}) when they are given."]
    )


def _field_rule_broken(case: Any, answer: dict[str, Any]) -> bool:
    """Every field the 400 names holds unstorable text (in nested JSON, which no pattern can reach: details,
    a parameter's values), or is a record's timestamp more than 5 minutes ahead, and says so."""
    errors = _record_errors(case.body, answer)
    if not errors:
        return False
    for record, name, messages in errors:
        value = record.get(name) if isinstance(record, dict) else None
        if messages == [UNSTORABLE_TEXT] and _unstorable(value):
            continue
        if name == "timestamp" and messages == [IN_THE_FUTURE] and _in_the_future(value):
            continue
        if (
            name == "cost"
            and value is None
            and isinstance(messages, list)
            and len(messages) == 1
            and str(messages[0]).startswith("The computed cost (")
            and str(messages[0]).endswith("report records in smaller parts.")
        ):
            continue  # documented: a cost computed from the price in force must fit the column
        if (
            name in {"token_count", "input_tokens"}
            and isinstance(record, dict)
            and _tokens_rule_broken(record, messages)
        ):
            continue
        return False
    return True


RULES: dict[tuple[str, str], Callable[[Any, set[str], Any], bool]] = {
    ("GET", "/models/{ref}/usage"): lambda case, named, body: _usage_range_broken(case, named),
    ("GET", "/models/{ref}/performance"): lambda case, named, body: _performance_range_broken(case, named),
    ("GET", "/audit"): lambda case, named, body: _audit_range_broken(case, named),
    ("POST", "/models/{ref}/parameters"): lambda case, named, body: _parameter_bounds_broken(case, named),
    ("PUT", "/models/{ref}"): _endpoint_ids_broken,
    ("PATCH", "/models/{ref}"): _endpoint_ids_broken,
}


def documented_rule_broken(method: str, path: str, case: Any, status_code: int, body: Any) -> bool:
    """Whether a 400 is the documented answer to a request that breaks its operation's cross-field rule."""
    if status_code != 400 or not isinstance(body, dict):
        return False
    rule = RULES.get((method.upper(), path))
    if rule is not None and rule(case, set(body), body):
        return True
    return method.upper() in {"POST", "PUT", "PATCH"} and _field_rule_broken(case, body)
