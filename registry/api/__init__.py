"""The REST API: DRF viewsets over registry.services and registry.selectors."""
