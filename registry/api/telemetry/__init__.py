"""``/models/{ref}/usage`` and ``/models/{ref}/performance``."""
