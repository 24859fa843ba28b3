"""A catalog's update URL on loopback: serves one JSON body (genai-prices' data.json, models.dev's api.json)."""

from __future__ import annotations

import json
from typing import Any

from tests.discovery.fakes.server import FakeProviderServer, Reply, Request


class FakeCatalogServer(FakeProviderServer):
    def __init__(self, body: Any) -> None:
        super().__init__()
        self.body = body

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def answer(self, request: Request) -> Reply:
        return Reply(200, self.body)


def padding_providers(count: int) -> list[dict[str, Any]]:
    """A provider of ``count`` priced models, so a small test catalog is not rejected as truncated."""
    models = [
        {"id": f"pad-{i}", "match": {"equals": f"pad-{i}"}, "prices": {"input_mtok": 1, "output_mtok": 1}}
        for i in range(count)
    ]
    return [{"id": "padding", "name": "Padding", "api_pattern": "https://padding\\.invalid", "models": models}]


def openai_prices(gpt_4o_prices: Any) -> list[dict[str, Any]]:
    """genai-prices' published shape: OpenAI with gpt-4o at ``gpt_4o_prices``, plus padding."""
    openai = {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {
                "id": "gpt-4o",
                "match": {"or": [{"equals": "gpt-4o"}, {"starts_with": "gpt-4o-2024"}]},
                "context_window": 128000,
                "prices": gpt_4o_prices,
            }
        ],
    }
    return [openai, *padding_providers(1300)]


def dumps(body: Any) -> str:
    return json.dumps(body)
