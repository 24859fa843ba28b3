"""A fake OpenAI-compatible server (vLLM, LM Studio): ``GET /v1/models``, key optional.

vLLM's entries add ``root``, ``parent``, ``max_model_len`` and ``permission``
(https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html); LM Studio's carry only
``id``, ``object`` and ``owned_by``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.discovery.fakes.server import FakeProviderServer, Reply, Request

DATA = Path(__file__).parent / "data" / "openai_compatible"


def load_models(flavour: str = "vllm") -> list[dict[str, Any]]:
    return list(json.loads((DATA / f"{flavour}_models.json").read_text())["data"])


class FakeOpenAICompatible(FakeProviderServer):
    def __init__(self, *, flavour: str = "vllm", api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key  # vLLM's --api-key; None: open server
        self.models = load_models(flavour)

    def error_body(self, status: int, message: str) -> Any:
        return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": status}

    def answer(self, request: Request) -> Reply:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": "Unauthorized"})
        if request.method == "GET" and request.path == "/v1/models":
            return Reply(200, {"object": "list", "data": self.models})
        return Reply(404, {"detail": "Not Found"})
