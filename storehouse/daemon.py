"""Dagster's daemon, with the workspace it replaces every minute freed when it is replaced.

``python -m storehouse.daemon run -w workspace.yaml`` is ``dagster-daemon run -w workspace.yaml``: the
same command line and the same code, plus one thread that runs a full garbage collection once a
minute. The deploy files and CI start the daemon this way.

Why. The daemon fetches its code locations' snapshots again every 60 s
(``dagster._daemon.controller.RELOAD_WORKSPACE_INTERVAL``) and drops the old ones. A dropped
``GrpcServerCodeLocation`` and its repositories refer to each other: each ``RemoteRepository``
holds a ``RepositoryHandle`` that holds the location, and the location's job-snapshot lookup.
Reference counting therefore never frees them; only CPython's full collection does. CPython runs a
full collection only once the objects that survived earlier collections reach a quarter of all
long-lived ones. For this daemon that is every 7–10 reloads. Until then each dropped snapshot stays
in memory: 1.5 MiB of live objects for our definitions, more while it is decoded. The daemon's RSS
climbed ~20 MiB over its first 15 minutes before levelling off. With a full collection after each
reload it stays within ~4 MiB of its first load. ``python bench/workspace_reloads.py`` measures both.
A full collection of the daemon's ~200,000 objects takes ~60 ms of CPU, once a minute.

The official Helm chart starts ``dagster-daemon run`` itself, in Dagster's image; there the daemon
levels off ~20 MiB higher (deploy/helm/values.yaml says so).
"""

from __future__ import annotations

import gc
import threading

# How often the daemon reloads its workspace: dagster._daemon.controller.RELOAD_WORKSPACE_INTERVAL,
# a private constant (tests/test_daemon.py holds the two equal, so an upgrade that changes it says so).
RELOAD_INTERVAL_S = 60.0


def collect_garbage_every(interval_s: float, stop: threading.Event) -> None:
    """Run a full collection every ``interval_s`` until ``stop`` is set."""
    while not stop.wait(interval_s):
        gc.collect()


def start_collector(interval_s: float = RELOAD_INTERVAL_S) -> threading.Event:
    """Start the collecting thread (a daemon thread: it never holds the process open); set the event
    it returns to stop it."""
    stop = threading.Event()
    threading.Thread(target=collect_garbage_every, args=(interval_s, stop), name="storehouse-gc",
                     daemon=True).start()
    return stop


def main() -> None:
    from dagster._daemon.cli import cli as dagster_daemon  # the `dagster-daemon` command itself

    start_collector()
    dagster_daemon(obj={}, prog_name="dagster-daemon")  # as dagster._daemon.cli.main calls it


if __name__ == "__main__":
    main()
