"""The REST API: DRF viewsets over registry.catalog.services and registry.catalog.selectors."""
