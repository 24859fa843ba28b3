"""The one capability vocabulary of the registry, and how each provider's words map to it.

Routers select models by these names (``GET /models?capability=code&min_score=0.7``), so every
source of capabilities (the admin, the API, discovery) uses them and nothing else:

============== ===========================================================================
``text``       general text generation and chat
``code``       writing, completing or filling in code (Ollama's ``insert``, fill-in-the-middle)
``image``      accepts images as input (Ollama's ``vision``, Anthropic's ``image_input``)
``reasoning``  an explicit reasoning/thinking mode (Ollama's ``thinking``, OpenAI o-series)
``tools``      function/tool calling
``embedding``  produces embeddings
``audio``      accepts or produces audio
============== ===========================================================================

Scores are on a 0-1 scale. A provider that *declares* a capability says nothing about how good
the model is at it: such a capability gets ``DECLARED_DEFAULT_SCORE`` and its evidence says so.
A catalog's boolean (models.dev's tool calling, reasoning, image input; discovery/catalogs.py) is a
declaration too: the same default score, with the catalog's name, version and entry as evidence.
"""

from __future__ import annotations

TEXT = "text"
CODE = "code"
IMAGE = "image"
REASONING = "reasoning"
TOOLS = "tools"
EMBEDDING = "embedding"
AUDIO = "audio"

VOCABULARY: frozenset[str] = frozenset({TEXT, CODE, IMAGE, REASONING, TOOLS, EMBEDDING, AUDIO})

# "Supported, strength unknown": the middle of the scale, so that a router asking for a strong
# model (min_score 0.7) does not get one merely because its provider says it can.
DECLARED_DEFAULT_SCORE = 0.5

# Ollama's /api/show "capabilities" words (https://github.com/ollama/ollama/blob/main/types/model/capability.go).
OLLAMA_WORDS: dict[str, str] = {
    "completion": TEXT,
    "vision": IMAGE,
    "tools": TOOLS,
    "thinking": REASONING,
    "embedding": EMBEDDING,
    "insert": CODE,
}

# Anthropic's /v1/models "capabilities" keys whose ``supported`` flag maps to a capability.
ANTHROPIC_WORDS: dict[str, str] = {
    "image_input": IMAGE,
    "thinking": REASONING,
}


def normalize(word: str, mapping: dict[str, str]) -> str | None:
    """The registry's name for a provider's capability word, or None when it has no equivalent."""
    return mapping.get(word.strip().lower())
