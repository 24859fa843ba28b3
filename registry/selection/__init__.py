"""Selection: which model a router should use, and why.

``ranking`` answers ``GET /models/select`` (models at or above a capability score, best first);
``explain`` answers ``POST /models/select`` (every model checked, the chain and each exclusion's
reason); ``compare`` answers ``GET /models/compare`` (models side by side, the best of each row
marked); ``scores`` derives measured capability scores from performance records; ``evidence``
says where a score came from.

May import: ``registry.models``, ``catalog``, ``telemetry``, ``reads`` (the rendered bodies and
compiled queries), ``operations.metrics``. Never the API or the console.
"""
