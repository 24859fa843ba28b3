"""Imported by Django's admin autodiscovery: the console's pages (registry/console/) register here."""

from registry.console import alerts, audit, catalog, history, scores

__all__ = ["alerts", "audit", "catalog", "history", "scores"]
