"""Dagster's daemon, with the workspaces it drops every minute freed within the minute.

``python -m storehouse.daemon run -w workspace.yaml`` is ``dagster-daemon run -w workspace.yaml``: the
same command line and the same code, plus one thread that runs a full garbage collection once a
minute. compose, CI and the soak start the daemon this way (``dagster dev``, behind ``storehouse
ui``/``up``, starts Dagster's own).

Why. The daemon fetches its code locations' snapshots again about every 60 s
(``dagster._daemon.controller.RELOAD_WORKSPACE_INTERVAL``) and drops the old ones. A dropped
``GrpcServerCodeLocation`` refers to itself through its repositories: each ``RemoteRepository``
keeps the location's bound ``_job_ref_to_snap`` (its job-snapshot lookup). Reference counting
therefore never frees it, and after a minute it has been moved to CPython's oldest generation,
which only a full collection sweeps. CPython (3.11 to 3.13) runs a full collection only once the
objects moved there since the last one reach a quarter of those that survived it.

``python bench/workspace_reloads.py`` reloads our workspace as the daemon does, in a process of its
own: CPython ran a full collection about every 10 reloads, each dropped location kept its decoded
snapshots until then, and RSS climbed 18–19 MiB over 15 to 25 reloads before levelling off; with a full
collection after each reload it stayed within ~4 MiB of the first load, each collection 60–100 ms
of CPU. Here the collection runs on its own 60 s clock, not right after each reload, so a dropped
workspace lives at most about a minute more. The daemon's own figures are the soak's
(``bench/README.md``).

The official Helm chart starts ``dagster-daemon run`` itself, in Dagster's image, without this
(deploy/helm/values.yaml says so).
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
