"""``GET /models/compare``: two to six models side by side (``registry.selection.compare``)."""
