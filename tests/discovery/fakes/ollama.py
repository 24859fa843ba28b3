"""A fake Ollama server: ``GET /api/tags`` and ``POST /api/show`` as Ollama answers them.

Formats: https://github.com/ollama/ollama/blob/main/docs/api.md. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.discovery.fakes.server import FakeProviderServer, Reply, Request

DATA = Path(__file__).parent / "data" / "ollama"


def load_models() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The recorded models of a current Ollama server: (tags entry, /api/show answer) pairs."""
    tags = json.loads((DATA / "tags.json").read_text())["models"]
    shows = json.loads((DATA / "show.json").read_text())
    return [(tag, shows[tag["name"]]) for tag in tags]


def load_legacy_models() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Models of an Ollama server before 0.6: /api/show without ``capabilities``."""
    legacy = json.loads((DATA / "show_legacy.json").read_text())
    return [(entry["tag"], entry["show"]) for key, entry in legacy.items() if not key.startswith("_")]


def generated_models(count: int, *, prefix: str = "gen") -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` distinct models shaped like the recorded llama3.2 one, for volume tests."""
    tag_template, show_template = load_models()[1]  # qwen3: capabilities and parameters
    models = []
    for index in range(count):
        name = f"{prefix}-{index:05d}:latest"
        tag = copy.deepcopy(tag_template)
        tag["name"] = tag["model"] = name
        tag["digest"] = f"{index:064x}"
        models.append((tag, copy.deepcopy(show_template)))
    return models


class FakeOllama(FakeProviderServer):
    def __init__(self, models: list[tuple[dict[str, Any], dict[str, Any]]] | None = None) -> None:
        super().__init__()
        self.set_models(load_models() if models is None else models)

    def set_models(self, models: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.tags = [tag for tag, _ in models]
        self.shows = {tag["name"]: show for tag, show in models}

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def answer(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/api/tags":
            return Reply(200, {"models": self.tags})
        if request.method == "POST" and request.path == "/api/show":
            body = request.body if isinstance(request.body, dict) else {}
            name = body.get("model") or body.get("name") or ""
            # Ollama resolves a bare name to its ":latest" tag.
            show = self.shows.get(name) or self.shows.get(f"{name}:latest")
            if show is None:
                return Reply(404, {"error": f"model '{name}' not found"})
            return Reply(200, show)
        return Reply(404, {"error": "404 page not found"})
