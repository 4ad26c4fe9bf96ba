"""One ASGI app mounting every fake provider.

Convention for a fake module ``sandbox/<name>.py``:
  * ``NAME``: its mount segment (``/mx``, ``/airalo``, ...); faults are keyed by it;
  * ``router``: an ``APIRouter`` with the provider's own paths, mounted at ``/{NAME}``;
  * ``control`` (optional): an ``APIRouter`` of sandbox-only switches, mounted at ``/_sandbox/{NAME}``;
  * ``reset()`` (optional): forget all state, called by ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fastapi import FastAPI

from sandbox.faults import FAULTS, FaultConfig, FaultMiddleware

# One line per fake; add yours here.
FAKE_MODULES = [
    "sandbox.mx_merchant",
    "sandbox.esimcard",
    "sandbox.mobimatter",
    "sandbox.airalo",
    "sandbox.resend",
    "sandbox.slack",
    "sandbox.stripe_fake",
    "sandbox.treez",
    "sandbox.dutchie",
    "sandbox.blaze",
    "sandbox.flowhub",
    "sandbox.cova",
    "sandbox.shopify",
    "sandbox.portaus",
]


def _load() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FAKE_MODULES]


def create_app() -> FastAPI:
    app = FastAPI(title="Storehouse sandbox", description="Faithful fakes of the outside world.")
    modules = _load()
    for module in modules:
        app.include_router(module.router, prefix=f"/{module.NAME}")
        control = getattr(module, "control", None)
        if control is not None:
            app.include_router(control, prefix=f"/_sandbox/{module.NAME}", tags=["sandbox control"])

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "fakes": [m.NAME for m in modules]}

    @app.put("/_sandbox/faults/{provider}", tags=["sandbox control"])
    def set_faults(provider: str, config: FaultConfig) -> dict:
        FAULTS.set(provider, config)
        return {"provider": provider, "config": config.model_dump()}

    @app.get("/_sandbox/faults", tags=["sandbox control"])
    def get_faults() -> dict:
        return FAULTS.snapshot()

    @app.delete("/_sandbox/faults", tags=["sandbox control"])
    def clear_faults() -> dict:
        FAULTS.clear()
        return {"cleared": True}

    @app.post("/_sandbox/reset", tags=["sandbox control"])
    def reset_all() -> dict:
        FAULTS.clear()
        for module in modules:
            reset = getattr(module, "reset", None)
            if reset is not None:
                reset()
        return {"reset": True}

    app.add_middleware(FaultMiddleware)
    return app
