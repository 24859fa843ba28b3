"""The read path: how a model's JSON is built once and served many times.

``representations`` renders a model's body (the one definition of its JSON); ``documents`` keeps
those bodies in ``model_documents``, invalidated by database triggers; ``bodies`` reads them for a
page, building what is missing; ``compiled`` runs the hot queries from SQL compiled once; ``cache``
holds whole answers in Redis under a generation that every write bumps.

May import: ``registry.models``, ``catalog`` (credentials' redaction, lookups), ``selection``
(evidence and ranking, for the bodies that show them), ``operations.metrics``. Never the API or the console.
"""
