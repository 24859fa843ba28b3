"""Access: who may do what, and who did.

``roles`` names the four roles and their permissions, ``accounts`` maps users and tokens to a
role, ``audit`` records changes and access with their actor (django-auditlog).

May import: ``registry.models``, ``catalog.credentials`` (redaction in audit entries). Never the
API or the console: the API's authentication classes are built on this package.
"""
