"""Routes under ``/api/v1/``: the whole API again, in the router's shapes with the profile on (api/platform.py).

Namespaced (``v1:``) so that the unprefixed routes keep their names for ``reverse()``.
"""

from django.urls import URLPattern, URLResolver, path

from discovery.api import urls as discovery_urls
from registry.api import urls as api_urls
from registry.api.operations import views as operations_views
from registry.api.platform.views import v1_urlpatterns

app_name = "v1"

urlpatterns: list[URLPattern | URLResolver] = v1_urlpatterns(
    [
        list(api_urls.urlpatterns),
        list(discovery_urls.urlpatterns),
        [
            path("audit", operations_views.AuditLogView.as_view(), name="audit"),
            path("audit/reads", operations_views.TrustedReadsView.as_view(), name="audit-reads"),
        ],
    ]
)
