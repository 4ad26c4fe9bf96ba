"""One ASGI app mounting every fake provider.

Convention for a fake module ``sandbox/<name>.py``:
  * ``NAME``: its mount segment (``/mx``, ``/airalo``, ...); faults are keyed by it;
  * ``router``: an ``APIRouter`` with the provider's own paths, mounted at ``/{NAME}``;
  * ``control`` (optional): an ``APIRouter`` of sandbox-only switches, mounted at ``/_sandbox/{NAME}``;
  * ``reset()`` (optional): forget all state, called by ``POST /_sandbox/reset``.

Every module here with a top-level ``NAME`` and ``router`` is mounted (``fake_modules``): adding
the file is enough. Each provider's descriptor names its mount (``PROVIDER.sandbox``), and a
test checks that every one exists here; the sandbox itself imports nothing of ours.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

from fastapi import FastAPI

from sandbox.faults import FAULTS, FaultConfig, FaultMiddleware

_HERE = Path(__file__).resolve().parent
_DECLARES = (re.compile(r"^NAME\s*=", re.M), re.compile(r"^router\s*=", re.M))


def fake_modules() -> list[str]:
    """Every module here that follows the convention (a top-level ``NAME`` and ``router``): adding
    a fake file is enough to mount it. Found by reading the sources, so nothing else is imported."""
    return [f"sandbox.{path.stem}" for path in sorted(_HERE.glob("*.py"))
            if all(rule.search(path.read_text()) for rule in _DECLARES)]


# Found by ``fake_modules``: no hand list to extend.
FAKE_MODULES = fake_modules()


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
