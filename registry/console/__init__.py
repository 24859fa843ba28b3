"""The console: the Django admin as the operators' tool, with a dashboard, charts and the registry's actions.

By page: ``catalog`` (models with their endpoints, capabilities and parameters inline), ``history``
(usage and performance), ``alerts``, ``audit``, ``scores`` (capability metrics) and ``selection``
(try a selection); ``site`` is the admin site with the dashboard as its front page, fed by
``dashboard`` (the console's selectors) and drawn by ``charts`` (inline SVG); ``availability`` is
the model page's timeline. ``forms`` holds the form pieces the registry's and discovery's pages share.

An entry point: it imports the domain (catalog, telemetry, selection, access, operations) and the
API's serializers, whose validation every form runs; nothing below imports it. Django's admin
autodiscovery imports ``registry.admin``, which imports the pages here so that they register.
This package's ``__init__`` imports nothing: the lazy default site imports ``site`` while the pages
register on that site.
"""
