"""``/models`` and what hangs off a model: capabilities, parameters, endpoints and prices."""
