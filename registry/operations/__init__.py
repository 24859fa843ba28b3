"""Operational endpoints: health, metrics and the audit log."""
