"""Cached reads served as bytes: the rendered JSON, its gzip form and its ETag, computed once per generation.

``cached_json_response`` is the whole read path of a cacheable GET (or of a read-only POST such as a
selection query, whose key is its canonical body): call it after authentication and the role check,
with a key covering everything that changes the body. On a hit it returns the stored bytes as they
are (no serializer, no renderer, no database); on a miss it calls ``build`` for the body, compresses
it once when it is large enough to be worth it, and stores both under the current generation.

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
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

from registry import metrics
from registry.cache import current_generation, generation_and_entry, store_entry

# Below this a gzip member's 18 bytes of framing and a round of inflate on the client buy little.
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
CACHE_CONTROL = "private, no-cache"
_ENTRY_PREFIX = "models:bytes"


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


def _headers(response: HttpResponse, etag: str) -> HttpResponse:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept-Encoding"
    return response


def cached_json_response(request: HttpRequest, *, kind: str, key: str, build: Callable[[], bytes]) -> HttpResponse:
    """The JSON body of ``kind``/``key`` from the cache (built by ``build`` on a miss), as a response.

    304 when ``If-None-Match`` names the current ETag; gzip when the body was compressed and the
    client accepts it.
    """
    entry_key = f"{_ENTRY_PREFIX}:{kind}:{key}"
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        generation = current_generation()
        etag = entity_tag(generation, entry_key)
        if etag_matches(if_none_match, etag):
            metrics.cache_lookup(kind=kind, hit=True)
            return _headers(HttpResponseNotModified(), etag)
    generation, entry = generation_and_entry(entry_key)
    etag = entity_tag(generation, entry_key)
    if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == generation:
        metrics.cache_lookup(kind=kind, hit=True)
        body, gzipped = entry[1], entry[2]
    else:
        metrics.cache_lookup(kind=kind, hit=False)
        body = build()
        gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        store_entry(entry_key, (generation, body, gzipped))
    if gzipped is not None and accepts_gzip(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        response = HttpResponse(gzipped, content_type="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(body, content_type="application/json")
    return _headers(response, etag)
