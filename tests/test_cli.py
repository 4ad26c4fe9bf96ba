"""The README's promise: `storehouse demo` runs the main job end to end on the embedded default."""

import os
import subprocess
import sys

import sqlalchemy as sa

from sandbox.server import free_port


def test_demo_end_to_end_on_a_fresh_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME")}
    env.update(STOREHOUSE_HOME=str(tmp_path / "home"), STOREHOUSE_SANDBOX_PORT=str(free_port()), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "storehouse.cli", "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Loaded into the warehouse" in done.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'warehouse.db'}")
    with engine.connect() as conn:
        per_tenant = dict(conn.execute(sa.text("select tenant_id, count(*) from transactions group by 1")).all())
    assert per_tenant == {"downtown-medical": 1500, "northside-clinic": 1200}
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()
