"""Operational endpoints: the index at ``/``, health, metrics and the audit log."""

from django.urls import URLPattern, URLResolver, path

from registry.api.operations import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics_view, name="metrics"),
    path("audit", views.AuditLogView.as_view(), name="audit"),
    path("audit/reads", views.TrustedReadsView.as_view(), name="audit-reads"),
]
