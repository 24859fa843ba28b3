"""Re-encryption of the secrets stored at rest, the last step of a key or salt rotation.

django-fernet-encrypted-fields encrypts with the first key derived from ``SECRET_KEY`` and the
first ``FIELD_ENCRYPTION_SALT`` and decrypts with every combination of ``SECRET_KEY``,
``SECRET_KEY_FALLBACKS`` and the salts. After a rotation, old values stay readable; re-encrypting
them under the new key is what lets the old key be dropped from the fallbacks.
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.db import models, transaction

logger = logging.getLogger(__name__)

# Fernet tokens start with version byte 0x80 and a timestamp: base64 "gAAAAA".
FERNET_TOKEN_PREFIX = "gAAAAA"  # noqa: S105 (a format marker, not a secret)

# Every encrypted column of the service: (model label, field names).
ENCRYPTED_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("registry.ModelEndpoint", ("api_key", "secret_headers")),
    ("discovery.ProviderSource", ("api_key",)),
)


@transaction.atomic
def secrets_reencrypt(*, batch_size: int = 500) -> dict[str, int]:
    """Rewrite every stored secret under the current key; returns rows rewritten per model.

    ``QuerySet.update`` encrypts through the field (with the first key) and, unlike ``save()``,
    sends no signals: the values do not change, so there is nothing to audit or invalidate.
    A value no key can decrypt is left as it is and logged (it reads back as its ciphertext).
    """
    rewritten: dict[str, int] = {}
    for label, field_names in ENCRYPTED_FIELDS:
        model: type[models.Model] = apps.get_model(label)
        count = 0
        rows = model._default_manager.order_by("pk").values_list("pk", *field_names)
        for pk, *values in rows.iterator(chunk_size=batch_size):
            changes = {}
            for name, value in zip(field_names, values, strict=True):
                if value is None:
                    continue
                if _undecryptable(model._meta.get_field(name), value):
                    logger.warning("secrets: %s %s.%s cannot be decrypted with any key; left as is", label, pk, name)
                    continue
                changes[name] = value
            if changes:
                model._default_manager.filter(pk=pk).update(**changes)
                count += 1
        rewritten[label] = count
    return rewritten


def _undecryptable(field: object, value: object) -> bool:
    """Whether reading ``value`` failed: the library then returns what is stored instead of raising.

    A text field reads back as its Fernet token; a JSON field reads back as its JSON text (a
    decrypted one is a dict or a list).
    """
    if isinstance(field, models.JSONField):
        return isinstance(value, str)
    return isinstance(value, str) and value.startswith(FERNET_TOKEN_PREFIX)
