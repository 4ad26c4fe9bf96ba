"""The warehouse tables dbt owns: one per model of the marts' project (``analytics/models``).

dbt creates and replaces them on every build, so the migrations neither create nor compare them.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "analytics" / "models"


def model_names() -> set[str]:
    """The marts' table names: one per model file."""
    return {path.stem for path in MODELS_DIR.rglob("*.sql")}


def not_dbt_owned(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` hook: compare and autogenerate skip the tables dbt builds."""
    return not (type_ == "table" and name in model_names())
