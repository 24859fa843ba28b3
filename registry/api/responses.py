"""Cached reads served as bytes: the rendered JSON, its gzip form and its ETag, computed once per generation.

``cached_json_response`` is the whole read path of a cacheable GET (or of a read-only POST such as a
selection query, whose key is its canonical body): call it after authentication and the role check,
with a key covering everything that changes the body. On a hit it returns the stored bytes as they
are (no serializer, no renderer, no database); on a miss it calls ``build`` for the body and stores
it under the current generation; a large body is compressed once, when a client first accepts gzip
for it, and stored beside it (``encoded_body``).

Validation of the query belongs in ``build``: a key that was ever stored was valid, and a hit then
skips the validation too. An exception in ``build`` (a 404, a 400) stores nothing.

ETags are derived from the generation and the key (not from the body): a 304 needs only the
generation, one small round trip, whatever the size of the body it spares. Any write to a model's
configuration changes the generation, hence every ETag; usage and performance records do not.
Responses say ``Cache-Control: private, no-cache``: only the client may keep them (they require a
token), and must revalidate with ``If-None-Match`` before reusing one.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

from registry.operations import metrics
from registry.reads.cache import current_generation, store_entry, stored_entry

# Below this a gzip member's 18 bytes of framing and a round of inflate on the client buy little.
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
CACHE_CONTROL = "private, no-cache"
_ENTRY_PREFIX = "models:bytes"
CACHED_READ_ENVIRON_KEY = "registry.cached_read"


def entity_tag(generation: int, entry_key: str) -> str:
    digest = hashlib.blake2b(f"{generation}:{entry_key}".encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison against any listed tag, or ``*``."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (named, or ``*``, without ``q=0``)."""
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def entry_key(kind: str, key: str) -> str:
    return f"{_ENTRY_PREFIX}:{kind}:{key}"


def canonical_query(request: HttpRequest) -> str:
    """The query string with its parameters sorted: one cache entry however a client orders them."""
    return urlencode(sorted((name, value) for name in request.GET for value in request.GET.getlist(name)))


def digest_key(body: bytes) -> str:
    """A read-only POST's key: a digest of its body as sent (a client sends the same bytes for the same question)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def body_key(request: HttpRequest) -> str:
    return digest_key(request.body)


def ttl_window() -> int:
    """The number of the cache TTL's window now: a key that names it expires with the window."""
    return int(time.time() // settings.CACHE_TTL_SECONDS)


def selection_key(key: str) -> str:
    """A selection's key: its ranking reads recent usage, which moves without changing the generation,
    so the key also names the TTL window it was built in (no copy, shared or per process, is older)."""
    return f"{key}:{ttl_window()}"


def list_key(request: HttpRequest) -> str:
    # A page's next/previous links are absolute: the scheme, the host and the path (/models, or
    # /api/v1/models without the router's profile) are part of the body.
    return f"{request.scheme}://{request.get_host()}{request.path_info}?{canonical_query(request)}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache holds for a read: its current ETag, and its bytes when built under the current generation."""

    generation: int
    etag: str
    not_modified: bool
    body: bytes | None = None
    gzipped: bytes | None = None


class LocalBodies:
    """The bodies this process served lately, by key and generation, within ``max_bytes``.

    A hit then costs one small round trip (the generation) instead of fetching and unpickling the
    body from the shared cache (650 KB for a page of 500 models). A copy is used only when its
    generation is the current one, read from the shared cache on every request, so it is exactly
    as fresh as the shared entry; the oldest copies go first when the budget is spent.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, bytes, bytes | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str, generation: int) -> tuple[bytes, bytes | None] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
                return None
            self._entries.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: str, generation: int, body: bytes, gzipped: bytes | None) -> None:
        size = len(body) + len(gzipped or b"")
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous[1]) + len(previous[2] or b"")
            self._entries[key] = (generation, body, gzipped)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped[1]) + len(dropped[2] or b"")

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


local_bodies = LocalBodies(settings.CACHE_LOCAL_MAX_BYTES)


def lookup(key: str, if_none_match: str | None) -> Lookup:
    """The entry at ``key`` (from ``entry_key``): 304 when ``if_none_match`` names the current ETag."""
    generation = current_generation()
    etag = entity_tag(generation, key)
    if if_none_match and etag_matches(if_none_match, etag):
        # The generation alone decides a 304: the body, however large, stays where it is.
        return Lookup(generation, etag, not_modified=True)
    local = local_bodies.get(key, generation)
    if local is not None:
        return Lookup(generation, etag, not_modified=False, body=local[0], gzipped=local[1])
    entry = stored_entry(key)
    if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == generation:
        local_bodies.put(key, generation, entry[1], entry[2])
        return Lookup(generation, etag, not_modified=False, body=entry[1], gzipped=entry[2])
    return Lookup(generation, etag, not_modified=False)


def store(key: str, generation: int, body: bytes) -> None:
    """Store ``body`` under ``generation``; its gzip form is made when a client first asks for it."""
    store_entry(key, (generation, body, None))
    local_bodies.put(key, generation, body, None)


def encoded_body(key: str, found: Lookup, accept_encoding: str) -> tuple[bytes, bool]:
    """The body of ``found`` (the entry at ``key``) to send, and whether it is the gzip form.

    A large body is compressed once per entry, by the first request that accepts gzip, and stored
    beside the body (shared and local copies): a miss does not pay for a compression its client
    did not ask for, and no later request compresses it again.
    """
    body = found.body
    assert body is not None
    if len(body) < GZIP_MIN_BYTES or not accepts_gzip(accept_encoding):
        return body, False
    gzipped = found.gzipped
    if gzipped is None:
        gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        store_entry(key, (found.generation, body, gzipped))
        local_bodies.put(key, found.generation, body, gzipped)
    return gzipped, True


def _headers(response: HttpResponse, etag: str) -> HttpResponse:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept-Encoding"
    return response


def cached_json_response(
    request: HttpRequest, *, kind: str, key: str, build: Callable[[], bytes], conditional: bool = True
) -> HttpResponse:
    """The JSON body of ``kind``/``key`` from the cache (built by ``build`` on a miss), as a response.

    304 when ``conditional`` and ``If-None-Match`` names the current ETag; gzip when the body was
    compressed and the client accepts it. A POST is not ``conditional``: RFC 9110 gives a matching
    If-None-Match on it no 304.
    """
    # Tells the WSGI front (fast_reads) which read this is, so it can learn the response's headers.
    request.META[CACHED_READ_ENVIRON_KEY] = kind  # META is the WSGI environ itself
    found = lookup(entry_key(kind, key), request.META.get("HTTP_IF_NONE_MATCH") if conditional else None)
    metrics.cache_lookup(kind=kind, hit=found.not_modified or found.body is not None)
    if found.not_modified:
        return _headers(HttpResponseNotModified(), found.etag)
    if found.body is None:
        body = build()
        store(entry_key(kind, key), found.generation, body)
        found = Lookup(found.generation, found.etag, not_modified=False, body=body)
    content, compressed = encoded_body(entry_key(kind, key), found, request.META.get("HTTP_ACCEPT_ENCODING", ""))
    response = HttpResponse(content, content_type="application/json")
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    return _headers(response, found.etag)
