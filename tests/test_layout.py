"""Dependencies point one way (ARCHITECTURE.md): checked on the source, so a stray import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"storehouse", "pipelines", "assets", "resources", "sensors", "shop", "api", "warehouse", "sandbox",
        "people", "syncing"}
SETTINGS = "storehouse.settings"  # the one leaf of the CLI package everything may read
ALLOWED = {
    "warehouse": {SETTINGS},  # the secrets key (warehouse.secrets)
    "sandbox": set(),  # an independent model of the outside world
    "resources": {"warehouse", SETTINGS},
    "shop": {"resources", "warehouse", SETTINGS},
    "syncing": {"resources", "warehouse", SETTINGS},  # the sync engine: no Dagster (below)
    "assets": {"resources", "warehouse", "shop", "syncing", SETTINGS},
    "sensors": {"assets", "resources", "warehouse", SETTINGS},
    "people": {"resources", "warehouse", SETTINGS},
    "api": {"shop", "people", "resources", "warehouse", "syncing.progress", SETTINGS},  # the sync steps' names
    "pipelines": {"assets", "resources", "sensors", "warehouse", SETTINGS},
}


def imports_of(path: Path) -> set[str]:
    return {name for name in _all_imports(path) if name.split(".")[0] in OURS}


def allowed(package: str, module: str) -> bool:
    top = module.split(".")[0]
    return top == package or top in ALLOWED[package] or any(
        module == rule or module.startswith(rule + ".") for rule in ALLOWED[package] if "." in rule)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package):
    wrong = sorted(f"{path.relative_to(ROOT)} imports {module}"
                   for path in (ROOT / package).rglob("*.py") for module in imports_of(path)
                   if not allowed(package, module))
    assert not wrong, "\n".join(wrong)


def test_sync_engine_does_not_import_dagster():
    """Syncs run (and are tested, benchmarked, driven by the manual-sync path) without Dagster; the
    assets wrap them."""
    found = sorted(f"{path.relative_to(ROOT)} imports {name}" for path in (ROOT / "syncing").rglob("*.py")
                   for name in _all_imports(path) if name.split(".")[0].startswith("dagster"))
    assert not found, "\n".join(found)


def _all_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_settings_leaf_imports_nothing_of_ours():
    assert imports_of(ROOT / "storehouse" / "settings.py") == set()
