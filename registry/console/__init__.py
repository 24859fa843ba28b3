"""The operator console: the Django admin, with a dashboard, charts and the registry's actions.

Split by resource: ``models`` (models with their endpoints, capabilities and parameters inline),
``history`` (usage and performance), ``alerts``, ``audit``, ``scores`` (capability metrics). The
dashboard is the site itself, ``registry.admin_site``: outside this package, because the lazy
default site imports it while the modules here register on that site.
"""

from registry.admin import alerts, audit, history, models, scores

__all__ = ["alerts", "audit", "history", "models", "scores"]
