"""The catalog's input rules that every way in shares: a model's name, the platform overrides, names of capabilities
and parameters, storable text.

Stated once, here in the domain, because the API (``registry/api/validators.py``, which raises these
problems as DRF errors) and a registry file's validation (``registry_validation``, which reports them
with their path) must hold the same rule with the same message, and the domain may not import the API.
Plain Python: each check returns the problem's message (None when there is none) and raises nothing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final, TypeGuard

from registry.catalog.selectors import is_model_id

# Path words after a model's name: a name may not contain them as a segment, or its URLs would be ambiguous.
SUB_RESOURCES: Final = ("capabilities", "parameters", "performance", "usage", "endpoints", "prices", "availability")

RESERVED_NAMES: Final = ("select", "compare")

# Lower-case slugs starting with a letter ("0" or "-x" is no capability name).
CAPABILITY_NAME: Final = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

MAX_CAPABILITY_NAME: Final = 50

PARAMETER_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

MAX_PARAMETER_NAME: Final = 100

# The largest JSON document a model's details may be (compact encoding).
MAX_JSON_BYTES: Final = 16 * 1024

# The keys of ``details.platform`` (docs/platform.md), and their limits.
PLATFORM_KEYS: Final = ("task_types", "content_types")

MAX_PLATFORM_WORDS: Final = 50

MAX_PLATFORM_WORD: Final = 100

WHITESPACE: Final = "".join(chr(code) for code in range(0x10000) if chr(code).isspace())


def excluded_class(extra: str = "") -> str:
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


# A model name as a regular expression: what model_name_problem accepts, stated in the API's schema.
# Built from the two word lists above, so that the schema cannot drift from the rule.
MODEL_NAME_PATTERN: Final = (
    r"^(?![0-9]+$)"
    + "".join(f"(?!{word}$)" for word in RESERVED_NAMES)
    + r"(?!/)(?!.*/$)(?!.*//)"
    + f"(?!.*/(?:{'|'.join(SUB_RESOURCES)})(?:/|$))"
    + f"[^{excluded_class(WHITESPACE + '?#')}\\\\]+$"
)

MODEL_NAME: Final = re.compile(MODEL_NAME_PATTERN)


def has_control_or_space(value: str) -> bool:
    return any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value)


def model_name_problem(value: str) -> str | None:
    """What is wrong with a model's name, or None: names are path segments of the API, never read as a route word."""
    if has_control_or_space(value):
        return "Names may not contain whitespace or control characters."
    if is_model_id(value):
        return "A name may not be only digits: /models/{id} would read it as an id."
    if value in RESERVED_NAMES:
        return f"{value!r} is reserved by the API."
    if any(ch in value for ch in "?#\\"):
        return "Names may not contain '?', '#' or '\\'."
    segments = value.split("/")
    if any(segment == "" for segment in segments):
        return "Names may not start or end with '/' nor contain '//'."
    if any(segment in SUB_RESOURCES for segment in segments[1:]):
        return f"A segment after '/' may not be one of {', '.join(SUB_RESOURCES)}: the API's paths use these words."
    if not MODEL_NAME.fullmatch(value):
        return "Names may not contain control or format characters."
    return None


def platform_override_problems(value: Any) -> dict[str | None, str]:
    """What is wrong with ``details.platform`` (the operator's task and content types, docs/platform.md).

    By key of the overrides; under None when the value as a whole is wrong. Empty when all is well
    (None, the overrides not given, is well).
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {None: "Must be an object."}
    problems: dict[str | None, str] = {}
    for key, item in value.items():
        if key not in PLATFORM_KEYS:
            problems[str(key)] = "Unknown key: task_types and content_types only."
        elif not isinstance(item, list) or not all(
            isinstance(word, str) and 0 < len(word) <= MAX_PLATFORM_WORD for word in item
        ):
            problems[key] = f"A list of words (strings of 1 to {MAX_PLATFORM_WORD} characters)."
        elif len(item) > MAX_PLATFORM_WORDS:
            problems[key] = f"At most {MAX_PLATFORM_WORDS}."
    return problems


def is_capability_name(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= MAX_CAPABILITY_NAME and bool(CAPABILITY_NAME.fullmatch(value))


def is_parameter_name(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= MAX_PARAMETER_NAME and bool(PARAMETER_NAME.fullmatch(value))


UNSTORABLE_TEXT: Final = "Text may not contain NUL characters or unpaired surrogates."


def is_storable_text(value: Any) -> bool:
    """False when ``value`` holds a string no database column takes: NUL, or an unpaired surrogate.

    JSON may carry both (``"\\u0000"``, ``"\\ud800"``); PostgreSQL refuses them, so they must be a
    message naming the field rather than a database error later.
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
