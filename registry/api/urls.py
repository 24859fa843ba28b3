"""The REST API: DRF viewsets over registry.services and registry.selectors."""

from django.urls import URLPattern, URLResolver, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/token", TokenObtainPairView.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/token/verify", TokenVerifyView.as_view(), name="auth-token-verify"),
]
