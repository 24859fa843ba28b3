"""Who changed what: django-auditlog, with actors for work done outside a request.

Changes through the admin and the API are logged by auditlog's signals with the request's actor.
Discovery and management commands run outside a request: they wrap their work in
``system_actor(...)``, and writes that bypass signals (``bulk_create``/``bulk_update``) are logged
explicitly with ``log_bulk``, because a signal-only audit silently misses them.

Secrets (API keys, secret headers) are registered as masked fields and the mask callable hides
the whole value: an entry shows that a key changed, never any part of it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from auditlog.context import auditlog_value, set_extra_data
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from registry.catalog.credentials import redact_text
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, ModelPrice, RegisteredModel

MASK = "********"
# A whole value that is one http(s) URL (a masked URL field's value), as opposed to a secret.
_URL = re.compile(r"^https?://[^\s]+$", re.I)

# The actor of the innermost acting_as block, for log_bulk (see _current_context).
_actor_context: ContextVar[dict[str, Any] | None] = ContextVar("registry_audit_actor", default=None)

ACTIONS = {"create": LogEntry.Action.CREATE, "update": LogEntry.Action.UPDATE, "delete": LogEntry.Action.DELETE}


def mask_secret(value: str) -> str:
    """AUDITLOG_MASK_CALLABLE: hide the whole value (auditlog's default shows half of it).

    URL fields (an endpoint's URL, a source's base URL) are masked fields too, but only their
    credential-like parts are hidden: which host a model moved to is an audit fact.
    """
    if _URL.match(value):
        return redact_text(value)
    return MASK


def register_models() -> None:
    """Register the audited models; called once from RegistryConfig.ready()."""
    secret_fields = {
        # ``headers`` too: the admin's endpoint form stores whatever headers it is given there, an
        # Authorization header included, so their values cannot be trusted to be non-secret.
        "registry.ModelEndpoint": ["api_key", "secret_headers", "headers", "endpoint_url"],
        "discovery.ProviderSource": ["api_key", "base_url"],
    }
    audited = [
        "registry.RegisteredModel",
        "registry.ModelEndpoint",
        "registry.ModelCapability",
        "registry.ModelParameter",
        "registry.ModelPrice",
        "registry.CapabilityMetric",
        "discovery.ProviderSource",
    ]
    for label in audited:
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(
                model,
                mask_fields=secret_fields.get(label, []),
                # Bookkeeping columns that change on every run would make idle discovery look busy.
                exclude_fields=["updated_at", "last_seen_at", "last_run_at", "last_status", "last_error"],
            )
    # Users' roles: group membership (m2m, logged by auditlog's m2m_changed handler) and the flags
    # that make a superuser. Only these fields: a password hash or a login time is not an audit fact.
    user_model = get_user_model()
    if not auditlog.contains(user_model):
        auditlog.register(
            user_model,
            include_fields=["username", "is_active", "is_staff", "is_superuser"],
            m2m_fields={"groups"},
        )


@contextlib.contextmanager
def acting_as(
    *,
    user: AbstractBaseUser | None = None,
    label: str | None = None,
    details: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> Iterator[None]:
    """Attribute every audit entry written inside the block to ``user`` or to ``label``.

    ``label`` names an actor that is not a local user ("system:discovery", "platform:<sub>");
    it is stored in the entry's ``actor_email`` column and, with ``details``, in ``additional_data``.
    """
    context: dict[str, Any] = {"actor": user, "remote_addr": remote_addr}
    if label is not None:
        context["actor_email"] = label
        context["additional_data"] = {"actor": label, **(details or {})}
    # auditlog's set_extra_data sets its context variable and never restores it: an enclosing actor
    # (auditlog's middleware, an outer acting_as) would lose its entries after this block, and the
    # middleware would disconnect the wrong receiver. Checkpoint the variable and reset it on exit.
    checkpoint = auditlog_value.set(auditlog_value.get(None))
    ours = _actor_context.set(context)
    try:
        with set_extra_data(context_data=dict(context)):
            yield
    finally:
        _actor_context.reset(ours)
        auditlog_value.reset(checkpoint)


def system_actor(name: str) -> contextlib.AbstractContextManager[None]:
    """The named system actor for discovery jobs and management commands: ``system:<name>``."""
    return acting_as(label=f"system:{name}")


def _current_context() -> dict[str, Any]:
    # Our own variable, not auditlog's: auditlog's middleware leaves its context set after a request
    # ends (its receiver is gone, so signals ignore it), and a bulk entry must not inherit it.
    return dict(_actor_context.get() or {})


def current_actor_name() -> str:
    """The innermost ``acting_as`` actor's name (a username, or a label such as ``platform:<sub>``); "" outside one.

    For records that name who acted without being audit entries themselves (availability history).
    """
    context = _actor_context.get() or {}
    if context.get("actor_email"):
        return str(context["actor_email"])
    user = context.get("actor")
    return str(user.get_username()) if user is not None and hasattr(user, "get_username") else ""


def _redacted(changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
    # Discovery's endpoint URLs derive from the source's base URL, which may carry user info.
    return {name: [redact_text(v) if isinstance(v, str) else v for v in pair] for name, pair in changes.items()}


def log_bulk(action: str, objects: Sequence[Model], changes: Sequence[dict[str, list[Any]]] | None = None) -> int:
    """Write one audit entry per object for writes that bypassed model signals.

    ``changes[i]`` maps field names to ``[old, new]`` (strings, as auditlog stores them); masked
    fields of the model must already be masked by the caller (use ``MASK``). Returns the count.
    """
    if not objects:
        return 0
    context = _current_context()
    actor = context.get("actor")
    reprs = _object_reprs(objects)
    entries = []
    for index, obj in enumerate(objects):
        entry_changes = _redacted(changes[index]) if changes is not None else {}
        entries.append(
            LogEntry(
                content_type=ContentType.objects.get_for_model(obj),
                object_pk=str(obj.pk),
                object_id=obj.pk if isinstance(obj.pk, int) else None,
                object_repr=reprs[index][:200],
                action=ACTIONS[action],
                changes=entry_changes,
                actor=actor if isinstance(actor, AbstractBaseUser) else None,
                actor_email=context.get("actor_email"),
                additional_data=context.get("additional_data"),
                remote_addr=context.get("remote_addr"),
            )
        )
    # 2,000 rows x 13 columns stays well under PostgreSQL's 65,535 bind parameters a statement.
    LogEntry.objects.bulk_create(entries, batch_size=2000)
    return len(entries)


# Rows whose ``str()`` starts with their model's name, or "model <id>" when the model is not loaded.
_MODEL_ROWS = (ModelCapability, ModelParameter, ModelEndpoint, ModelPrice)


def _object_reprs(objects: Sequence[Model]) -> list[str]:
    """``str(obj)`` of each object; a model's rows (capabilities, parameters, endpoints, prices) as "<model name>: ...".

    Rows whose model is loaded (most of discovery's are) cost nothing; the others' model names come
    in one query, so that no entry names a model by its id ("model 51: local endpoint").
    """
    unloaded = {obj.model_id for obj in objects if isinstance(obj, _MODEL_ROWS) and not type(obj).model.is_cached(obj)}
    model_names = dict(RegisteredModel.objects.filter(pk__in=unloaded).values_list("pk", "name")) if unloaded else {}
    reprs = []
    for obj in objects:
        text = str(obj)
        if isinstance(obj, _MODEL_ROWS) and obj.model_id in model_names:
            anonymous = f"model {obj.model_id}: "
            if text.startswith(anonymous):
                text = f"{model_names[obj.model_id]}: {text[len(anonymous) :]}"
        reprs.append(text)
    return reprs
