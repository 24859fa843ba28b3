"""Access: who may do what, and who did.

``roles`` names the four roles and their permissions, ``accounts`` maps users and tokens to a
role, ``audit`` records changes and access with their actor (django-auditlog), ``read_counts``
counts the token-less reads of trusted networks per client, route and minute (no write per read).

May import: ``registry.models``, ``catalog.credentials`` (redaction in audit entries). Never the
API or the console: the API's authentication classes are built on this package.
"""
