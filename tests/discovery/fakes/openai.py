"""A fake OpenAI API: ``GET /v1/models`` with ``Authorization: Bearer <key>``.

Format: https://platform.openai.com/docs/api-reference/models/list; errors as the API sends them,
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.discovery.fakes.server import FakeProviderServer, Reply, Request

DATA = Path(__file__).parent / "data" / "openai"


def load_models(fixture: str = "models.json") -> list[dict[str, Any]]:
    """The entries of a list answer under data/: ``models.json`` (small, for behaviour) or a realistic list."""
    return list(json.loads((DATA / fixture).read_text())["data"])


class FakeOpenAI(FakeProviderServer):
    def __init__(self, *, api_key: str = "sk-test-openai-key", models: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = load_models() if models is None else models

    def error_body(self, status: int, message: str) -> Any:
        kinds = {401: "invalid_request_error", 429: "requests", 500: "server_error"}
        return {"error": {"message": message, "type": kinds.get(status, "server_error"), "param": None, "code": None}}

    def answer(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            body = self.error_body(
                401,
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            )
            body["error"]["code"] = "invalid_api_key"
            return Reply(401, body)
        if request.method == "GET" and request.path == "/v1/models":
            return Reply(200, {"object": "list", "data": self.models})
        return Reply(404, self.error_body(404, f"Invalid URL ({request.method} {request.path})"))
