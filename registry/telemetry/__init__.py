"""Telemetry: what models did. Usage and performance records, their statistics, and the alerts on them.

``services`` writes records in batches; ``costing`` prices them (and re-costs the records a price
arrived too late for); ``selectors`` summarises them; ``statistics`` computes
percentiles in the database where it can; ``alerts`` checks error rate, latency, availability and
sources, and keeps the ``alerts`` table; ``availability`` records each model's status events and
derives its availability intervals from them; ``buffering`` keeps usage posted while the database is
away in the usage buffer and drains it once the database is back.

May import: ``registry.models``, ``catalog`` (prices in force, lookups), ``access``, ``reads``,
``operations.metrics``, and discovery's models (a failing source's alert). Never the API or the console.
"""
