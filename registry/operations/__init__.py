"""Operations: what running the service needs beside its data.

``health`` (the dependency checks of ``/health``), ``metrics`` (the registry's Prometheus
counters), ``schedules`` (the periodic tasks besides discovery's and the alerts'), ``secrets``
(re-encryption after a key rotation), ``retention`` (pruning the tables that grow, and their
sizes), ``usage_buffer`` (the Redis stream where usage waits while the database is away: what
``/health`` and ``/metrics`` show of it; what it means is ``telemetry.buffering``'s) and
``selectors`` (the audit log's reads). Its HTTP views are
the API's (``registry.api.operations``).

May import: ``registry.models``, ``reads`` (the Redis cache it checks), ``access``, ``discovery.models``
(retention prunes discovery runs). Never the API or the console.
"""
