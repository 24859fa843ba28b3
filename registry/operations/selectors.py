"""Reads of the operational data: the audit log, and the trusted networks' read counts beside it."""

from __future__ import annotations

from datetime import datetime

from auditlog.models import LogEntry
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from registry.models import TrustedNetworkRead

# The audited objects, by the names the API uses for them.
AUDITED_OBJECTS: dict[str, str] = {
    "model": "registry.RegisteredModel",
    "endpoint": "registry.ModelEndpoint",
    "capability": "registry.ModelCapability",
    "parameter": "registry.ModelParameter",
    "price": "registry.ModelPrice",
    "alert": "registry.Alert",
    "capability_metric": "registry.CapabilityMetric",
    "source": "discovery.ProviderSource",
    "user": settings.AUTH_USER_MODEL,
}
ACTIONS = {
    "create": LogEntry.Action.CREATE,
    "update": LogEntry.Action.UPDATE,
    "delete": LogEntry.Action.DELETE,
    # Requests trusted by their network alone, as audited before they were counted instead
    # (registry/access/read_counts.py): the entries stay readable until retention prunes them.
    "access": LogEntry.Action.ACCESS,
}


def audit_object_types() -> dict[int, str]:
    """Content type id -> the API's name for it."""
    models = {name: apps.get_model(label) for name, label in AUDITED_OBJECTS.items()}
    content_types = ContentType.objects.get_for_models(*models.values())
    return {content_types[model].pk: name for name, model in models.items()}


def audit_entries(
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[LogEntry]:
    """Audit entries, newest first, filtered; ``actor`` is a username or a label (``system:discovery``)."""
    entries = LogEntry.objects.select_related("actor").order_by("-timestamp", "-id")
    if object_type is not None:
        type_ids = {name: pk for pk, name in audit_object_types().items()}
        entries = entries.filter(content_type_id=type_ids[object_type])
    if object_id is not None:
        entries = entries.filter(object_pk=object_id)
    if actor is not None:
        username_field = get_user_model().USERNAME_FIELD
        entries = entries.filter(Q(**{f"actor__{username_field}": actor}) | Q(actor__isnull=True, actor_email=actor))
    if action is not None:
        entries = entries.filter(action=ACTIONS[action])
    if since is not None:
        entries = entries.filter(timestamp__gte=since)
    if until is not None:
        entries = entries.filter(timestamp__lt=until)
    return entries


def trusted_network_reads(
    *,
    client: str | None = None,
    route: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[TrustedNetworkRead]:
    """Token-less requests (reads, usage posts) from trusted networks, a row per client, method, route and minute.

    ``since`` and ``until`` bound the minute a row counts (a row of 12:04 holds the reads of 12:04:00
    to 12:04:59); ``route`` is a route's pattern as recorded (``/api/v1/models/{ref}``).
    """
    rows = TrustedNetworkRead.objects.order_by("-minute", "client_address", "route", "method", "id")
    if client is not None:
        rows = rows.filter(client_address=client)
    if route is not None:
        rows = rows.filter(route=route)
    if since is not None:
        rows = rows.filter(minute__gte=since)
    if until is not None:
        rows = rows.filter(minute__lt=until)
    return rows
