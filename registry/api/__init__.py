"""The REST API (DRF): an entry point over the domain packages, split by resource.

``catalog/`` (models, capabilities, parameters, endpoints, prices), ``telemetry/`` (usage and
performance), ``selection/`` (the selection's questions and answers), ``platform/`` (the router's
``/api/v1`` profile), ``operations/`` (health, metrics, audit log). Shared: ``validators`` and
``fields`` (the input rules every resource uses), ``viewsets`` (the base viewset), and the
cross-cutting ``authentication``, ``permissions``, ``errors``, ``limits``, ``parsers``,
``pagination``, ``responses`` (cached answers), ``fast_reads`` (the WSGI front of cached reads),
``schema`` and ``tokens``.

May import the domain (catalog, telemetry, selection, reads, access, operations) and discovery's.
Nothing of the domain imports it.
"""
