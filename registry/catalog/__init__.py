"""The catalog: what the registry knows of each model.

Models, their endpoints, capabilities, parameters and dated prices (``services``, ``prices``,
``selectors``), the capability rules' writes (``rules``), the capability vocabulary
(``capabilities``), the handling of credentials in URLs (``credentials``), and the registry as a
file (``registry_file``: the format and export; ``registry_validation``: a whole file checked;
``registry_apply``: the diff and its apply through the services). The tables are ``registry.models``'.

May import: ``registry.models``, ``access`` (audit actors), ``reads`` (cache invalidation),
``telemetry`` (resolving the unpriced-usage alert), ``operations.metrics``. Never the API or the console.
"""
