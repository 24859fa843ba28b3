"""The bare Starlette app of bench/bench_read.py: each registry read's exact bytes, and nothing else.

The ceiling every figure of the read benchmark is divided by: no authentication, no database, no
framework beyond routing. Served by uvicorn with the registry's number of workers.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODIES = {file.stem: file.read_bytes() for file in Path(os.environ["BENCH_BODIES_DIR"]).glob("*.json")}


async def bare(request: Request) -> Response:
    return Response(BODIES[request.path_params["name"]], media_type="application/json")


app = Starlette(routes=[Route("/bare/{name}", bare)])
