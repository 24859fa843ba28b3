"""HTTP to providers: timeouts, bounded retries with backoff, a size cap, and no secret in any log.

Every provider client goes through ``ProviderHTTP``. Settings are read at call time so that a
test (or an operator's environment) changes them without reloading anything:
``DISCOVERY_CONNECT_TIMEOUT``, ``DISCOVERY_READ_TIMEOUT``, ``DISCOVERY_MAX_RETRIES``,
``DISCOVERY_BACKOFF_SECONDS``, ``DISCOVERY_MAX_BACKOFF_SECONDS``, ``DISCOVERY_MAX_RESPONSE_BYTES``,
``DISCOVERY_REQUEST_DEADLINE_SECONDS``.

The read timeout bounds each socket read, not the whole: a server that sends a byte a second
would keep one request going for as long as it likes. Each attempt therefore also has a total
deadline, checked between the (small) reads of the body.

``answer_within(seconds)`` bounds everything asked inside it, for a person waiting on a page (the
console's "Test connection"): one attempt, no retry, and every timeout cut to what is left of the
bound, so an unreachable host costs the web worker those seconds, not the retries' minute.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from django.conf import settings
from django.utils import timezone

from discovery.clients.base import ProviderError, SourceKeyRejected

logger = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})

# (monotonic deadline, the bound in seconds) of the innermost answer_within block.
_bound: ContextVar[tuple[float, float] | None] = ContextVar("discovery_http_bound", default=None)


@contextlib.contextmanager
def answer_within(seconds: float) -> Iterator[None]:
    """Every provider request inside the block: one attempt, and all of them done within ``seconds``."""
    token = _bound.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _bound.reset(token)


USER_AGENT = "model-registry-discovery/1"


def redacted_url(url: str) -> str:
    """``url`` without user:password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class ProviderHTTP:
    """A requests Session bound to one source, speaking JSON."""

    def __init__(
        self, *, source_name: str, base_url: str, headers: dict[str, str] | None = None, max_retries: int | None = None
    ) -> None:
        self.source_name = source_name
        self.base_url = base_url.rstrip("/")
        # None: DISCOVERY_MAX_RETRIES. A frequent poll passes 0: its next run is the retry.
        self.max_retries = max_retries
        self.session = requests.Session()
        # Secrets travel only in these headers, which are never logged. Proxies from the
        # environment still apply (trust_env), as operators expect.
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})})

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ProviderHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, params=params)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body=body)

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> Any:
        url = f"{self.base_url}{path}"
        shown = f"{method} {redacted_url(url)}"
        max_retries = int(settings.DISCOVERY_MAX_RETRIES) if self.max_retries is None else self.max_retries
        bound = _bound.get()
        if bound is not None:
            max_retries = 0  # a person is waiting: the answer now, or why not
        attempts = max_retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            deadline = time.monotonic() + float(settings.DISCOVERY_REQUEST_DEADLINE_SECONDS)
            connect_timeout, read_timeout = (
                float(settings.DISCOVERY_CONNECT_TIMEOUT),
                float(settings.DISCOVERY_READ_TIMEOUT),
            )
            if bound is not None:
                left = bound[0] - time.monotonic()
                if left <= 0:
                    raise ProviderError(f"source {self.source_name}: {shown} not asked: no answer within {bound[1]:g}s")
                deadline = min(deadline, bound[0])
                connect_timeout, read_timeout = min(connect_timeout, left), min(read_timeout, left)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    timeout=(connect_timeout, read_timeout),
                    stream=True,
                    # A redirect to another host would carry x-api-key along (requests strips only
                    # Authorization): providers do not redirect their API, so treat it as an error.
                    allow_redirects=False,
                )
            except requests.ConnectTimeout:
                problem = f"did not accept a connection within {_seconds(connect_timeout, bound)} (connect timeout)"
            except requests.ReadTimeout:
                problem = f"did not answer within {_seconds(read_timeout, bound)} (read timeout)"
            except requests.ConnectionError as exc:
                problem = f"could not be reached ({_connection_reason(exc)})"
            except requests.RequestException as exc:
                raise ProviderError(f"source {self.source_name}: {shown} failed: {type(exc).__name__}") from exc
            else:
                with response:
                    status = response.status_code
                    if status in (401, 403):
                        raise SourceKeyRejected(
                            f"the key for source {self.source_name} was rejected (HTTP {status} from {shown})"
                        )
                    if status in RETRIED_STATUSES:
                        problem = f"answered HTTP {status}"
                        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                    elif 300 <= status < 400:
                        location = redacted_url(response.headers.get("Location", "?"))
                        raise ProviderError(
                            f"source {self.source_name}: {shown} answered HTTP {status}, a redirect to {location}; "
                            "redirects are not followed (fix the source's base URL)"
                        )
                    elif status >= 400:
                        raise ProviderError(f"source {self.source_name}: {shown} answered HTTP {status}")
                    else:
                        return self._read_json(response, shown, deadline)
            logger.warning(
                "discovery source %s: %s %s (attempt %d of %d)", self.source_name, shown, problem, attempt, attempts
            )
            if attempt < attempts:
                time.sleep(self._delay(attempt, retry_after))
        raise ProviderError(f"source {self.source_name}: {shown} {problem}, after {attempts} attempt(s)")

    @staticmethod
    def _delay(attempt: int, retry_after: float | None) -> float:
        cap = float(settings.DISCOVERY_MAX_BACKOFF_SECONDS)
        if retry_after is not None:
            return min(cap, retry_after)
        return min(cap, float(settings.DISCOVERY_BACKOFF_SECONDS) * 2 ** (attempt - 1))

    def _read_json(self, response: requests.Response, shown: str, deadline: float) -> Any:
        limit = int(settings.DISCOVERY_MAX_RESPONSE_BYTES)
        too_big = ProviderError(
            f"source {self.source_name}: the answer to {shown} is larger than the limit of {limit} bytes "
            "(DISCOVERY_MAX_RESPONSE_BYTES)"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        # Count while streaming: a server that lies about (or omits) Content-Length is still capped.
        # read1 returns what one socket read brings (never waits to fill the chunk), so the deadline
        # is checked at least once per read timeout however slowly the bytes come.
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(65536, decode_content=True):
                size += len(chunk)
                if size > limit:
                    raise too_big
                if time.monotonic() > deadline:
                    bound = _bound.get()
                    within = (
                        f"{settings.DISCOVERY_REQUEST_DEADLINE_SECONDS}s (DISCOVERY_REQUEST_DEADLINE_SECONDS)"
                        if bound is None
                        else f"{bound[1]:g}s"
                    )
                    raise ProviderError(
                        f"source {self.source_name}: the answer to {shown} did not arrive within {within}"
                    )
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise ProviderError(
                f"source {self.source_name}: the answer to {shown} was cut off ({type(exc).__name__})"
            ) from exc
        try:
            return json.loads(b"".join(chunks))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProviderError(
                f"source {self.source_name}: the answer to {shown} is not valid JSON (malformed or truncated: {exc})"
            ) from exc


def _seconds(timeout: float, bound: tuple[float, float] | None) -> str:
    """A timeout as a message gives it: the bound it was cut to (``answer_within``), or the setting's."""
    if bound is not None and timeout <= bound[1]:
        return f"{bound[1]:g}s (the bound of this check)"
    return f"{timeout:g}s"


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "host name not found"
    if "timed out" in text:
        return f"read timeout after {settings.DISCOVERY_READ_TIMEOUT}s"
    return type(exc).__name__


def expect_mapping(payload: Any, key: str, *, source_name: str, what: str) -> list[Any]:
    """``payload[key]`` as a list, or a clear ProviderError when the answer has another shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise ProviderError(f"source {source_name}: unexpected answer from {what} (no '{key}' list)")
    return list(payload[key])
