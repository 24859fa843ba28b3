"""Top-level routes. The REST API lives at the root of the service, as the design document names it."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
