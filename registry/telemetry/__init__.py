"""Telemetry: what models did. Usage and performance records, their statistics, and the alerts on them.

``services`` writes records in batches; ``costing`` prices them (and re-costs the records a price
arrived too late for); ``rollups`` keeps their hourly rollups (a trigger on PostgreSQL, the services
on SQLite); ``usage`` is the one reader of usage figures over any window (rollups for whole hours,
raw rows for the partial edges), which ``selectors`` (summaries), ``alerts``, the console and
selection call; ``histograms`` gives latency percentiles within 2 %; ``alerts`` checks error rate,
latency, availability and sources, and keeps the ``alerts`` table; ``availability`` records each
model's status events and derives its availability intervals from them; ``buffering`` keeps usage
posted while the database is away in the usage buffer and drains it once the database is back.

May import: ``registry.models``, ``catalog`` (prices in force, lookups), ``access``, ``reads``,
``operations.metrics``, and discovery's models (a failing source's alert). Never the API or the console.
"""
