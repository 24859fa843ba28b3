"""``/healthz``, ``/health``, ``/metrics``, ``/audit`` and the index at ``/``: the operational endpoints."""
