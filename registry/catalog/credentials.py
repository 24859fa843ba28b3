"""Credentials inside URLs: found, refused on input, and redacted wherever a URL is shown, logged or audited.

A URL can carry a secret in its user info (``https://user:pw@host``), in its query
(``?api_key=...``, ``?key=...`` as Google's APIs take it) or in its fragment (``#access_token=...``
as OAuth's implicit flow returns it, ``#token=...``). The API refuses such URLs and points
to the encrypted fields; URLs that arrive another way (the environment, the admin, rows stored
before) are redacted on the way out: representations, audit entries, log lines, command output.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"
# Query parameter names that carry credentials (api_key, key, apiKey, access_token, X-Amz-Signature, sig, ...),
# judged word by word so that "design" or "author" is not one.
_CREDENTIAL_WORDS = frozenset(
    {"key", "token", "secret", "password", "passwd", "pwd", "pass", "auth", "signature", "sig", "credential"}
    | {"credentials", "session", "sessionid", "sid", "authorization", "jwt", "bearer"}
)
_CREDENTIAL_SUFFIXES = ("key", "token", "secret", "password")
_NAME_WORDS = re.compile(r"[^a-z0-9]+")
# In free text: user info after a scheme, and credential-like query or fragment parameters (also in a
# bare "/path?key=..." as urllib3's error messages print it).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s'\"<>]*)@")
_QUERY_PARAM_IN_TEXT = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&#\s'\"<>]+)=(?P<value>[^&#\s'\"<>]*)")


def is_credential_name(name: str) -> bool:
    words = [word for word in _NAME_WORDS.split(name.lower()) if word]
    return any(word in _CREDENTIAL_WORDS or word.endswith(_CREDENTIAL_SUFFIXES) for word in words)


def url_credentials(url: str) -> list[str]:
    """What in ``url`` looks like a credential: "user info" and each credential-like parameter's name, in the
    query or in the fragment (which a browser never sends, but the URL is still shown, audited and logged)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = ["user info"] if "@" in parts.netloc else []
    for part in (parts.query, parts.fragment):
        found += [name for name, _ in parse_qsl(part, keep_blank_values=True) if is_credential_name(name)]
    return found


def redact_text(text: str) -> str:
    """``text`` with user info in URLs and the values of credential-like query or fragment parameters as ``***``."""
    if "@" not in text and "=" not in text:
        return text  # the common case, without a regex pass
    text = _USERINFO_IN_TEXT.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)

    def query_param(match: re.Match[str]) -> str:
        if not is_credential_name(match["name"]) or not match["value"]:
            return match[0]
        return f"{match['lead']}{match['name']}={REDACTED}"

    return _QUERY_PARAM_IN_TEXT.sub(query_param, text)


def redact_url(url: str | None) -> str | None:
    return None if url is None else redact_text(url)


class RedactCredentialsFilter(logging.Filter):
    """A logging filter: the formatted message of every record, with URL credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback's last line repeats the exception's message (requests puts the URL there).
            exc = record.exc_info[1]
            text = str(exc)
            if redact_text(text) != text:
                record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True
