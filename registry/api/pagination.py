"""Pages of a list: ``limit`` and ``offset`` as the schema states them, or a 400 naming the parameter.

DRF's ``LimitOffsetPagination`` reads ``?limit=AAA``, ``?limit=0`` or ``?offset=1&offset=2`` as
"the default" (or the last value) without a word; a client that sent them meant something else.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from registry.api.fields import EMPTY_PARAMETER, REPEATED_PARAMETER
from registry.api.validators import INT32_MAX


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """``limit`` from 1 to ``max_limit`` (default ``default_limit``), ``offset`` from 0; each given at most once."""

    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        value = self._parameter(request, self.limit_query_param, minimum=1, maximum=self.max_limit or INT32_MAX)
        return self.default_limit if value is None else value

    def get_offset(self, request: Request) -> int:
        value = self._parameter(request, self.offset_query_param, minimum=0, maximum=INT32_MAX)
        return 0 if value is None else value

    @staticmethod
    def _parameter(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        if len(values) > 1:
            raise serializers.ValidationError({name: [REPEATED_PARAMETER]})
        if values[0] == "":
            raise serializers.ValidationError({name: [EMPTY_PARAMETER]})
        field = serializers.IntegerField(min_value=minimum, max_value=maximum)
        try:
            return int(field.run_validation(values[0]))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({name: exc.detail}) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": INT32_MAX},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = f"Page size, 1 to {self.max_limit} (default {self.default_limit})."
        return parameters
