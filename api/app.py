"""The API app factory."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="Storehouse API", version="0.1.0")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        return {"ok": True}

    return app
