"""What OPTIONS answers on the API (the settings' DEFAULT_METADATA_CLASS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request

if TYPE_CHECKING:
    # Only for annotations: DRF imports this module while rest_framework.views loads.
    from rest_framework.views import APIView


class EndpointMetadata(SimpleMetadata):
    """OPTIONS: the endpoint's name, description, and media types; its input is described by /api/schema.

    DRF's default also describes each write's serializer, loading the object of a detail route
    through ``get_object``, which these viewsets do not use (they look models up by id or name).
    """

    def determine_metadata(self, request: Request, view: APIView) -> dict[str, Any]:
        metadata = super().determine_metadata(request, view)
        metadata.pop("actions", None)
        return metadata

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        return {}
