"""The Dagster daemon's workspace reload, N times in one process, with RSS as it goes: as Dagster
leaves it, and with a full collection after each reload (what ``storehouse/daemon.py`` adds).

Every 60 s the daemon fetches its code location's snapshots again from the code server and drops
the old ones (``WorkspaceProcessContext.refresh_workspace``). A dropped location and its
repositories refer to each other, so only CPython's full collection frees them. This runs that
reload against our definitions on a real code server (``dagster api grpc``), in two fresh
processes, one per way. It prints RSS after the first load and every 5 reloads, the full collections
CPython ran by itself, and the CPU the added collections took.

    python bench/workspace_reloads.py [--reloads 30]

The code server's instance is a scratch SQLite one; nothing else is touched.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, rss_mib, stop  # noqa: E402

BIN = Path(sys.executable).parent
WAYS = {"as-is": "as Dagster leaves it", "collected": "a full collection after each reload"}


def reload_loop(sock: str, reloads: int, collect: bool) -> None:
    """In this process: load the workspace from the code server, then reload it ``reloads`` times."""
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import GrpcServerTarget

    full = 0  # full collections so far, CPython's own and ours

    def count_full(phase: str, info: dict) -> None:
        nonlocal full
        full += phase == "stop" and info["generation"] == 2

    gc.callbacks.append(count_full)
    target = GrpcServerTarget(host="localhost", port=None, socket=sock, location_name="storehouse")
    with dg.DagsterInstance.get() as instance, WorkspaceProcessContext(instance, target) as workspace:
        print(f"   loaded: {rss_mib():.1f} MiB", flush=True)
        collect_s = 0.0
        for i in range(1, reloads + 1):
            workspace.refresh_workspace()
            if collect:
                started = time.process_time()
                gc.collect()
                collect_s += time.process_time() - started
            if i % 5 == 0 or i == reloads:
                print(f"   after {i:>3} reloads: {rss_mib():.1f} MiB, full collections by CPython itself: "
                      f"{full - (i if collect else 0)}", flush=True)
        if collect:
            print(f"   the added collections: {collect_s / reloads * 1000:.0f} ms of CPU each", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=30, help="workspace reloads (the daemon does one a minute)")
    parser.add_argument("--child", choices=list(WAYS), help=argparse.SUPPRESS)
    parser.add_argument("--socket", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        reload_loop(args.socket, args.reloads, collect=args.child == "collected")
        return

    with tempfile.TemporaryDirectory() as home:
        Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": home, "STOREHOUSE_HOME": home, "PYTHONPATH": str(ROOT),
               "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}  # as deploy/Dockerfile sets it
        sock, log = str(Path(home, "grpc.sock")), Path(home, "code-server.log")  # a socket no other server shares
        with open(log, "wb") as out:
            server = subprocess.Popen([str(BIN / "dagster"), "api", "grpc", "-m", "pipelines.definitions", "-a",
                                       "defs", "-s", sock], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-s", sock], env=env,
                                 capture_output=True).returncode != 0:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the code server did not start: {log.read_text()[-2000:]}")
                time.sleep(1)
            print(f"{machine()} · {args.reloads} workspace reloads of our definitions, each way in a fresh process, "
                  f"MALLOC_ARENA_MAX={env['MALLOC_ARENA_MAX']}", flush=True)
            for way, what in WAYS.items():
                print(f"{way}: {what}", flush=True)
                subprocess.run([sys.executable, __file__, "--child", way, "--socket", sock, "--reloads",
                                str(args.reloads)], cwd=ROOT, env=env, check=True)
        finally:
            stop(server, 30)


if __name__ == "__main__":
    main()
