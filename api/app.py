"""The API app factory: routers per area, problem-details errors, health."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

# One line per router module (each exposes `router`); add yours here.
ROUTERS: list[str] = [
    "api.routes.health",
]


def create_app() -> FastAPI:
    app = FastAPI(title="Storehouse API", version="0.1.0")
    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router)
    return app
