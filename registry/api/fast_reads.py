"""The WSGI front of cached reads: a hit is answered before Django's middleware and DRF run.

Django's middleware stack and DRF's request cycle cost several times what a cache hit needs
(docs/BENCHMARKS.md: a bare Django view reaches about a fifth of a bare Starlette server on the
same bytes). For ``GET /models``, ``/models/select`` and ``/models/{ref}`` (and, with the router's
profile on, ``/api/v1/models``, ``/api/v1/models/{ref}`` and its ``/capabilities``) with a bearer
token, or with no ``Authorization`` header from ``PLATFORM_TRUSTED_NETWORKS``, this front does what
the view would do on a hit, with the same functions: resolve the route, validate the Host, check
the token and the role, or the client's network (registry.api.authentication, which also counts a
token-less read as Django would), compute the same cache key, and return the stored bytes (or a
304). Two misses are answered here too, and stored as the view would store them: a detail's, when
the model's stored document is current (registry/reads/bodies.py: one query, the bytes the view
would serve), and an explained selection's, when its body validates (the view's parser,
serializer and selection). Everything else, and anything unusual (no token from outside the
trusted networks, a refused token, a missing role, any other miss, a body the view refuses, a
non-JSON Accept, a bad Host), goes to Django unchanged, which answers it (401,
403, 400, 404, 406, or a miss that stores the entry).

The response headers are the ones Django sent for that read: the front learns them from the first
response of each kind that Django serves in this process (minus the per-response ETag, length and
encoding), so the security headers, ``Vary`` and ``Allow`` stay whatever the middleware makes them.
Until it has seen one, the front passes the read to Django.

Hits answered here are counted by ``registry_cache_hits_total``; django-prometheus's per-view
request metrics do not see them (the server's access log does).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest
from django.urls import Resolver404, resolve
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.request import Request

from registry.access.roles import Role
from registry.api.authentication import bearer_role, remembered_role, trusted_network_of, trusted_request_recorded
from registry.api.catalog.views import ModelViewSet
from registry.api.exceptions import PayloadTooLarge
from registry.api.limits import refusal_of
from registry.api.platform import views as platform
from registry.api.responses import (
    CACHED_READ_ENVIRON_KEY,
    Lookup,
    canonical_query,
    digest_key,
    encoded_body,
    entry_key,
    lookup,
    selection_key,
    store,
)
from registry.api.selection.serializers import SelectionRequestSerializer
from registry.api.validators import is_storable_text
from registry.operations import metrics
from registry.reads import bodies as model_documents
from registry.reads.representations import json_bytes
from registry.selection import explain as selection

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The routes (registry/api/urls.py names) whose GET is a cached read, and their cache kinds.
CACHED_ROUTES = {"model-list": "list", "model-select": "select", "model-detail": "detail"}
# The same under /api/v1/ with the router's profile on (registry/api/platform/views.py's cache kinds).
PLATFORM_ROUTES = {
    "model-list": "platform-list",
    "model-detail": "platform-detail",
    "model-capabilities": "platform-capabilities",
}
# Each kind's route as TrustedNetworkAuthentication records it (registry.access.read_counts.route_pattern
# of Django's pattern), so that a token-less read counts on the same row whichever of the two serves it.
ROUTE_OF_KIND = {
    "list": "/models",
    "select": "/models/select",
    "detail": "/models/{ref}",
    "platform-list": "/api/v1/models",
    "platform-detail": "/api/v1/models/{ref}",
    "platform-capabilities": "/api/v1/models/{ref}/capabilities",
}
_V1_MODELS = platform.PREFIX + "models"
_CAPABILITIES = "/capabilities"
# Headers that belong to one response, not to every response of a kind.
_PER_RESPONSE = {"content-length", "etag", "content-encoding", "date", "server"}
_JSON_TYPES = ("application/json", "application/*", "*/*")


def cached_route(path: str) -> tuple[str, str | None] | None:
    """The cache kind (and model ref) of a path, as Django's URL resolver would route it; None if not cached.

    ``/models/<ref>`` with no further '/' can only be the detail route (every sub-resource route has
    one more segment); refs with '/' (names such as ``hf.co/org/model``) are left to the resolver.
    """
    if not path.isascii():
        # PATH_INFO is the path's bytes read as latin-1 (PEP 3333): a ref taken from it as it is would
        # not be the name Django decodes, and could be another model's. Django routes these.
        return None
    if path.startswith(platform.PREFIX):
        return _platform_route(path) if platform.profile_on() else None
    if path == "/models":
        return "list", None
    if path == "/models/select":
        return "select", None
    if not path.startswith("/models/"):
        return None
    ref = path[len("/models/") :]
    if ref and "/" not in ref:
        return "detail", ref
    try:
        match = resolve(path)
    except Resolver404:
        return None
    kind = CACHED_ROUTES.get(match.url_name or "")
    return (kind, match.kwargs.get("ref")) if kind is not None else None


def _platform_route(path: str) -> tuple[str, str | None] | None:
    """``cached_route`` under /api/v1/ with the router's profile on: its list, a model and a model's capabilities."""
    if path == _V1_MODELS:
        return "platform-list", None
    rest = path[len(_V1_MODELS) + 1 :] if path.startswith(_V1_MODELS + "/") else ""
    # /api/v1/models/select is the registry's selection (the profile leaves it alone): Django serves it.
    if rest and "/" not in rest and rest != "select":
        return "platform-detail", rest
    ref = rest.removesuffix(_CAPABILITIES)
    if ref and ref != rest and "/" not in ref:
        return "platform-capabilities", ref
    try:
        match = resolve(path)
    except Resolver404:
        return None
    kind = PLATFORM_ROUTES.get(match.url_name or "") if match.namespace == "v1" else None
    return (kind, match.kwargs.get("ref")) if kind is not None else None


_ORIGINS_MAX = 256
_origins: dict[tuple[Any, ...], tuple[str, str, bool] | None] = {}
_QUERIES_MAX = 1024
_queries: dict[str, str] = {}


def _origin(environ: dict[str, Any]) -> tuple[str, str, bool] | None:
    """The validated host, the scheme and whether the request is secure, as Django computes them (memoized)."""
    proxy_header = settings.SECURE_PROXY_SSL_HEADER[0] if settings.SECURE_PROXY_SSL_HEADER else ""
    key = (
        environ.get("HTTP_X_FORWARDED_HOST"),
        environ.get("HTTP_X_FORWARDED_PORT"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("wsgi.url_scheme"),
        environ.get(proxy_header),
    )
    if key in _origins:
        return _origins[key]
    request = WSGIRequest(environ)
    try:
        origin: tuple[str, str, bool] | None = (request.get_host(), str(request.scheme), request.is_secure())
    except DisallowedHost:
        origin = None
    if len(_origins) >= _ORIGINS_MAX:
        _origins.clear()  # a flood of distinct hosts: forget rather than grow
    _origins[key] = origin
    return origin


def _canonical_query(environ: dict[str, Any]) -> str:
    raw = environ.get("QUERY_STRING", "")
    found = _queries.get(raw)
    if found is None:
        found = canonical_query(WSGIRequest(environ))
        if len(_queries) >= _QUERIES_MAX:
            _queries.clear()
        _queries[raw] = found
    return found


# The largest selection body the front reads itself; a larger one (or one without a length) goes to Django.
SELECTION_BODY_MAX = 64 * 1024
SELECTION_BODY_KEY = "registry.selection_body"


def _with_selection_body(environ: dict[str, Any]) -> str | None:
    """Read a ``POST /models/select`` body into the environ (and back into ``wsgi.input`` for Django).

    "POST" when the front may answer it from the cache, None when it must go to Django untouched.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= SELECTION_BODY_MAX or not str(environ.get("CONTENT_TYPE", "")).startswith("application/json"):
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ[SELECTION_BODY_KEY] = body
    return "POST"


def explained_selection(environ: dict[str, Any]) -> bytes | None:
    """The answer to the ``POST /models/select`` of ``environ``, built as the view builds it; None when the
    view must answer (a body it refuses: 400, 413 or 415, never stored).

    The same parser, serializer and selection as ``ModelViewSet.explain``, without the middleware and
    DRF's request cycle around them: on a selection over 1,000 models they cost about a tenth of
    the miss's CPU (docs/BENCHMARKS.md).
    """
    # The view's own parsers and DRF's negotiation over them, as its request chooses (415 when none).
    content_type = str(environ.get("CONTENT_TYPE", ""))
    view = ModelViewSet()
    # select_parser reads nothing of the request but its content type.
    request = cast(Request, SimpleNamespace(content_type=content_type))
    parser = view.get_content_negotiator().select_parser(request, view.get_parsers())
    if parser is None:
        return None
    try:
        data = parser.parse(io.BytesIO(environ[SELECTION_BODY_KEY]), content_type, {})
    except (ParseError, PayloadTooLarge):
        return None
    serializer = SelectionRequestSerializer(data=data)
    if not serializer.is_valid():
        return None
    return json_bytes(selection.select_explained(selection.SelectionRequest.from_validated(serializer.validated_data)))


def _token_less(environ: dict[str, Any]) -> bool:
    """Whether a read may be a trusted network's: no Authorization header at all, and some network trusted."""
    return "HTTP_AUTHORIZATION" not in environ and bool(settings.PLATFORM_TRUSTED_NETWORKS)


class CachedReads:
    """WSGI middleware: cache hits of model reads without Django; everything else through it."""

    def __init__(self, application: WSGIApplication) -> None:
        self.application = application
        # (kind, status) -> Django's status line and headers for that read, as learnt from it.
        self.learnt: dict[tuple[str, int], tuple[str, list[tuple[str, str]]]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            # Only a selection is a read among POSTs; any other write goes to Django untouched.
            eligible = environ.get("HTTP_AUTHORIZATION") and environ.get("PATH_INFO") == "/models/select"
            method = _with_selection_body(environ) if eligible else None
        # A read with a token, or without one from a trusted network (judged in serve).
        if method in ("GET", "POST") and (environ.get("HTTP_AUTHORIZATION") or _token_less(environ)):
            try:
                served = self.serve(environ, start_response)
            except Exception:  # the front must never be the reason a read fails: Django answers instead
                logger.exception("cached-read front failed; the request goes to Django")
                served = None
            if served is not None:
                return served
        return self.application(environ, self._learning(environ, start_response))

    def _learning(self, environ: dict[str, Any], start_response: StartResponse) -> StartResponse:
        def learn(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kind = environ.get(CACHED_READ_ENVIRON_KEY)
            code = int(status[:3])
            if kind is not None and exc_info is None and code in (200, 304):
                names = {name.lower() for name, _ in headers}
                if "set-cookie" not in names:
                    kept = [(name, value) for name, value in headers if name.lower() not in _PER_RESPONSE]
                    self.learnt[(kind, code)] = (status, kept)
            return start_response(status, headers, exc_info)

        return learn

    @staticmethod
    def _role(environ: dict[str, Any]) -> Role | None:
        """The caller's role: from the memo of verified tokens when the header is plainly ``Bearer <token>``."""
        scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        if scheme.lower() == "bearer" and token and " " not in token:
            known, role = remembered_role(token)
            if known:
                return role
        request = HttpRequest()
        request.META = environ  # all the authenticators read
        return bearer_role(request)

    def serve(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes] | None:
        """The cached response, already started; None to let Django answer."""
        if refusal_of(environ) is not None:
            return None  # over the request limits: Django's middleware answers 414/431/413 as JSON
        if SELECTION_BODY_KEY in environ:
            route: tuple[str, str | None] | None = ("explain", None)
        else:
            route = cached_route(environ.get("PATH_INFO", ""))
        if route is None:
            return None
        kind, ref = route
        accept = environ.get("HTTP_ACCEPT")
        if accept and not any(media in accept for media in _JSON_TYPES):
            return None  # DRF's content negotiation decides (406)
        origin = _origin(environ)
        if origin is None:
            return None  # a Host Django refuses: it answers 400
        host, scheme, secure = origin
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        if kind == "list":
            key = f"{scheme}://{host}/models?{_canonical_query(environ)}"  # the one path of this kind here
        elif kind == "platform-list":
            key = f"{platform.SHAPE}:{_canonical_query(environ)}"
        elif kind == "select":
            key = selection_key(_canonical_query(environ))
        elif kind == "explain":
            key = selection_key(digest_key(environ[SELECTION_BODY_KEY]))
        else:
            key = str(ref)
            if not is_storable_text(key):
                return None
            if kind.startswith("platform-"):
                key = f"{platform.SHAPE}:{key}"
        trusted = None
        if "HTTP_AUTHORIZATION" in environ:
            try:
                role = self._role(environ)
            except AuthenticationFailed:
                return None
        else:
            # No Authorization header at all: a trusted network's caller is the service role, as
            # TrustedNetworkAuthentication makes it; anyone else is Django's 401.
            trusted = trusted_network_of(environ)
            if trusted is None:
                return None
            role = Role.SERVICE
        if role is None or role < Role.VIEWER:
            return None
        stored_at = entry_key(kind, key)
        # A POST is never conditional (RFC 9110), as the view answers it.
        found = lookup(stored_at, environ.get("HTTP_IF_NONE_MATCH") if kind != "explain" else None)
        code = 304 if found.not_modified else 200
        learnt = self.learnt.get((kind, code))
        if learnt is None:
            return None
        hit = found.not_modified or found.body is not None
        if not hit:
            # A detail's miss is its stored document (one query), as the view would build it: no
            # validation to run, nothing but the ref in the key. An explained selection's miss is
            # built here as the view builds it, when its body validates. Any other miss, a
            # document missing or stale, and a body the view refuses go to Django.
            if kind == "detail":
                body = model_documents.stored_body(key)
            elif kind == "explain":
                body = explained_selection(environ)
            else:
                body = None
            if body is None:
                return None
            store(stored_at, found.generation, body)
            found = Lookup(found.generation, found.etag, not_modified=False, body=body)
        status, headers = learnt
        headers = [*headers, ("ETag", found.etag)]
        body = b""
        if found.body is not None:
            body, compressed = encoded_body(stored_at, found, environ.get("HTTP_ACCEPT_ENCODING", ""))
            if compressed:
                headers.append(("Content-Encoding", "gzip"))
            headers.append(("Content-Length", str(len(body))))
        metrics.cache_lookup(kind=kind, hit=hit)
        if trusted is not None:
            address, network = trusted
            trusted_request_recorded(address=address, network=network, method="GET", route=ROUTE_OF_KIND[kind])
        start_response(status, headers)
        return [body] if body else []
