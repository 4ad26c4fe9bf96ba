"""Dependencies point one way (README, "How data flows"): checked on the source, so a stray import fails here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"settings", "storehouse", "pipelines", "assets", "resources", "sensors", "commerce", "api", "warehouse", "sandbox",
        "people", "syncing", "studio"}
SETTINGS = "settings"  # the leaf package every layer may read
ALLOWED = {
    "settings": set(),  # the leaf: every layer reads it, it reads none of ours
    "warehouse": {SETTINGS},  # the secrets key (warehouse.secrets)
    "sandbox": set(),  # an independent model of the outside world
    "resources": {"warehouse", SETTINGS},
    "commerce": {"resources", "warehouse", SETTINGS},
    "syncing": {"resources", "warehouse", SETTINGS},  # the sync engine: no Dagster (below)
    "assets": {"resources", "warehouse", "commerce", "studio", "syncing", SETTINGS},
    "sensors": {"assets", "resources", "warehouse", SETTINGS},
    "people": {"resources", "warehouse", SETTINGS},
    "studio": {"commerce", "people", "resources", "warehouse", SETTINGS},  # reuses the shop's Stripe and leases
    "api": {"commerce", "people", "studio", "resources", "warehouse", "syncing.progress", SETTINGS},  # the sync steps' names
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


def test_sync_engine_and_providers_import_no_dagster():
    """Syncs run (and are tested, benchmarked, driven by the manual-sync path) without Dagster, and so
    does every provider module and the registry; the assets and ``resources.dagster_resources`` wrap
    them. Checked on what a fresh interpreter actually loads, not on the source, so an import of
    Dagster anywhere down the graph fails here."""
    modules = sorted({f"syncing.{p.stem}" for p in (ROOT / "syncing").glob("*.py") if p.stem != "__init__"}
                     | {"syncing", "resources.providers", "resources.systems", "resources.pos_orders"})
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "import resources.providers as r\nprint(len(r.PROVIDERS), sorted(k for k in sys.modules if k.split('.')[0] == 'dagster')[:3])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) >= 10  # every provider module was imported (the registry found them all)
    assert loaded.strip() == "[]", f"importing the sync engine and the providers loads {loaded}"


def _all_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_settings_leaf_imports_nothing_of_ours():
    assert imports_of(ROOT / "settings" / "__init__.py") == set()


def test_the_readme_flow_diagram_shows_every_package():
    text = (ROOT / "README.md").read_text()
    start = text.index("## How data flows")
    diagram = text[start:text.index("```", text.index("```", start) + 3)]
    missing = sorted(package for package in OURS | {"analytics"} if f"{package}/" not in diagram)
    assert not missing, f"README's flow diagram lacks {missing}"
