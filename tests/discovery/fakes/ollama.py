"""A fake Ollama server: ``GET /api/tags``, ``POST /api/show`` and ``GET /api/ps`` as Ollama answers them.

Formats: https://github.com/ollama/ollama/blob/main/docs/api.md. Errors are ``{"error": "..."}``.
It starts idle (``/api/ps`` lists nothing); tests load models with ``set_loaded``.
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


def load_running() -> list[dict[str, Any]]:
    """The recorded ``/api/ps`` entries: one with ``context_length``, one of an older server without it."""
    return list(json.loads((DATA / "ps.json").read_text())["models"])


def running_entry(
    tag: dict[str, Any],
    *,
    size_vram: int | None = 2_000_000_000,
    context_length: int | None = 4096,
    expires_at: str | None = "2026-12-02T07:35:12.483716204+01:00",
) -> dict[str, Any]:
    """An ``/api/ps`` entry for the tags entry ``tag``; a fact given as None is left out, as older servers do."""
    entry: dict[str, Any] = {
        key: copy.deepcopy(tag[key]) for key in ("name", "model", "size", "digest", "details") if key in tag
    }
    for key, value in (("expires_at", expires_at), ("size_vram", size_vram), ("context_length", context_length)):
        if value is not None:
            entry[key] = value
    return entry


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
        self.running: list[dict[str, Any]] = []

    def set_loaded(self, entries: list[dict[str, Any]]) -> None:
        """What ``GET /api/ps`` lists from now on (``running_entry``, ``load_running``)."""
        self.running = [copy.deepcopy(entry) for entry in entries]

    def load(self, *names: str, **facts: Any) -> None:
        """Mark listed models loaded, with the same ``facts`` (``running_entry``'s keywords)."""
        tags = {tag["name"]: tag for tag in self.tags}
        self.set_loaded([running_entry(tags.get(name) or {"name": name, "model": name}, **facts) for name in names])

    def set_models(self, models: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.tags = [tag for tag, _ in models]
        self.shows = {tag["name"]: show for tag, show in models}

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def answer(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/api/tags":
            return Reply(200, {"models": self.tags})
        if request.method == "GET" and request.path == "/api/ps":
            return Reply(200, {"models": self.running})
        if request.method == "POST" and request.path == "/api/show":
            body = request.body if isinstance(request.body, dict) else {}
            name = body.get("model") or body.get("name") or ""
            # Ollama resolves a bare name to its ":latest" tag.
            show = self.shows.get(name) or self.shows.get(f"{name}:latest")
            if show is None:
                return Reply(404, {"error": f"model '{name}' not found"})
            return Reply(200, show)
        return Reply(404, {"error": "404 page not found"})
