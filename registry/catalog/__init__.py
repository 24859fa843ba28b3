"""The catalog: what the registry knows of each model.

Models, their endpoints, capabilities, parameters and dated prices (``services``, ``prices``,
``selectors``), the capability vocabulary (``capabilities``) and the handling of credentials in
URLs (``credentials``). The tables are ``registry.models``'.

May import: ``registry.models``, ``access`` (audit actors), ``reads`` (cache invalidation),
``telemetry`` (resolving the unpriced-usage alert), ``operations.metrics``. Never the API or the console.
"""
