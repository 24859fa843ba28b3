"""A fake Anthropic API: paginated ``GET /v1/models`` with ``x-api-key`` and ``anthropic-version``.

Format: https://docs.anthropic.com/en/api/models-list: ``limit`` (default 20, 1-1000),
``after_id`` / ``before_id`` cursors; the page carries ``data``, ``has_more``, ``first_id``,
``last_id``. Errors: ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.discovery.fakes.server import FakeProviderServer, Reply, Request

DATA = Path(__file__).parent / "data" / "anthropic"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def load_models(fixture: str = "models.json") -> list[dict[str, Any]]:
    """The entries of a list answer under data/: ``models.json`` (small, for behaviour) or a realistic list."""
    return list(json.loads((DATA / fixture).read_text())["data"])


class FakeAnthropic(FakeProviderServer):
    def __init__(
        self, *, api_key: str = "sk-ant-test-key", models: list[dict[str, Any]] | None = None, max_limit: int = 1000
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = load_models() if models is None else models
        self.max_limit = max_limit  # lower it to force several pages on a client asking for more

    def error_body(self, status: int, message: str) -> Any:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def answer(self, request: Request) -> Reply:
        # The API takes the key as x-api-key (its documented header) or, as SDK 2.x sends it, a Bearer token.
        presented = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != self.api_key:
            return Reply(401, self.error_body(401, "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            return Reply(400, self.error_body(400, "anthropic-version: header is required"))
        if request.method != "GET" or request.path != "/v1/models":
            return Reply(404, self.error_body(404, "Not found"))
        limit = min(int(request.query.get("limit", ["20"])[0]), self.max_limit)
        ids = [m["id"] for m in self.models]
        start = 0
        if "after_id" in request.query:
            start = ids.index(request.query["after_id"][0]) + 1
        end = start + limit
        if "before_id" in request.query:
            end = ids.index(request.query["before_id"][0])
            start = max(0, end - limit)
        page = self.models[start:end]
        return Reply(
            200,
            {
                "data": page,
                "has_more": end < len(self.models) if "before_id" not in request.query else start > 0,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )
