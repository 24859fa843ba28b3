"""``GET /models/compare?models=a,b,c``: the comparison of ``registry.selection.compare``, as JSON."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from registry.access.roles import Role
from registry.api.compare.serializers import CompareQuerySerializer, ComparisonSerializer
from registry.api.viewsets import ERROR_RESPONSES, RegistryViewSet
from registry.selection.compare import Comparison, models_compare

COMPARE_RULE = (
    "One column per model, in the order given; `rows` hold one value per model and mark the best (`best`): "
    "the lowest price, latency, error rate and open alerts, the highest context window, capability score and "
    "available fraction; "
    "equal values are marked alike, and nothing is marked when fewer than two models have a value or the row "
    "is a volume (requests, tokens, spend). `models` that name fewer than 2 or more than 6 models, an unknown "
    "model, or one model twice (by name and by id): a 400 naming `models`. A `date` that is neither a date nor "
    "a date and time: a 400 naming `date`."
)


def _plain(value: Any) -> Any:
    """JSON-native values: Decimals as numbers, datetimes as ISO 8601 with Z."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def comparison_body(comparison: Comparison) -> dict[str, Any]:
    """The answer of ``GET /models/compare`` (``ComparisonSerializer``'s shape)."""
    return _plain(
        {
            "models": [
                {
                    "id": model.pk,
                    "name": model.name,
                    "display_name": model.display_name,
                    "status": model.status,
                    "provider": model.provider,
                    "model_type": model.model_type,
                }
                for model in comparison.models
            ],
            "price_date": comparison.price_moment,
            "windows": {name: {"from": start, "to": end} for name, (start, end) in comparison.windows.items()},
            "rows": [
                {
                    "key": row.key,
                    "label": row.label,
                    "group": row.group,
                    "kind": row.kind,
                    "better": row.better,
                    "values": row.values,
                    "best": row.best,
                }
                for row in comparison.rows
            ],
            "sparklines": {"bucket": "day", "starts": comparison.bucket_starts, **comparison.sparklines},
        }
    )


class CompareViewSet(RegistryViewSet):
    action_roles = {"compare": Role.VIEWER}

    @extend_schema(
        summary="Compare 2 to 6 models side by side: prices, scores, latency, errors, usage and spend, availability, "
        "runtime, alerts",
        description=COMPARE_RULE,
        parameters=[CompareQuerySerializer],
        responses={200: ComparisonSerializer, **ERROR_RESPONSES},
    )
    def compare(self, request: Request) -> Response:
        query = self.validated_query(CompareQuerySerializer)
        comparison = models_compare(query["models"], price_moment=query.get("date"))
        return Response(comparison_body(comparison))
