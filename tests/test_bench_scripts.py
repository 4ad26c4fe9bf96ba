"""Every script under bench/ still imports: a bench is run by hand, now and then, so a name lost
in a merge or a rename (as `_storefront.ceiling_server` once was) would otherwise be found only
by the next person who needs the figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_every_bench_script_imports(tmp_path):
    modules = sorted(p.stem for p in BENCH.glob("*.py"))
    assert len(modules) > 10
    program = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=-1).strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(BENCH.parent)]),
           "CEILING_DATABASE_URL": f"sqlite:///{tmp_path / 'ceiling.db'}"}  # read when _ceiling_app loads
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"bench scripts that do not import:\n{done.stdout}{done.stderr[-2000:]}"
