"""Routes of the provider sources API (admins only)."""

from django.urls import URLPattern, path

from discovery.api.views import ProviderSourceViewSet

urlpatterns: list[URLPattern] = [
    path("sources", ProviderSourceViewSet.as_view({"get": "list", "post": "create"}), name="source-list"),
    path(
        "sources/<int:source_id>",
        ProviderSourceViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="source-detail",
    ),
    path(
        "sources/<int:source_id>/discover",
        ProviderSourceViewSet.as_view({"post": "discover"}),
        name="source-discover",
    ),
    path("sources/<int:source_id>/runs", ProviderSourceViewSet.as_view({"get": "runs"}), name="source-runs"),
]
