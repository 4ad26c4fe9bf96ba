"""``storehouse.daemon``: Dagster's daemon, with the workspace it replaces every minute freed.

The premise is checked on a real code server: a code location the daemon drops at a reload is not
freed until a full collection, and the collector frees it. If Dagster ever breaks that reference
cycle, the first test fails and says the collector can go.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import dagster as dg
import pytest

from storehouse import daemon
from storehouse.daemon import RELOAD_INTERVAL_S, start_collector

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_the_collector_runs_as_often_as_the_daemon_reloads_its_workspace():
    from dagster._daemon.controller import RELOAD_WORKSPACE_INTERVAL

    assert RELOAD_INTERVAL_S == RELOAD_WORKSPACE_INTERVAL


@pytest.fixture(scope="module")
def code_server(tmp_path_factory):
    """A real `dagster api grpc` code server for a one-asset definitions file, on a Unix socket of
    its own (a TCP port could be shared: gRPC binds with SO_REUSEPORT). Yields the socket's path."""
    home = tmp_path_factory.mktemp("daemon_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (home / "defs.py").write_text("import dagster as dg\n\n\n@dg.asset\ndef one():\n    return 1\n\n\n"
                                  "defs = dg.Definitions(assets=[one])\n")
    sock, log = str(home / "grpc.sock"), home / "code-server.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with open(log, "wb") as out:
        server = subprocess.Popen([str(BIN / "dagster"), "api", "grpc", "-f", str(home / "defs.py"), "-a", "defs",
                                   "-s", sock], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-s", sock], env=env,
                             capture_output=True).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, \
                f"the code server did not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        yield sock
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def gc_restored():
    """Automatic collection as it was before the test, whatever the test did."""
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def reload(sock: str):
    """The daemon's workspace reload, as it leaves things: the code location it loaded a minute ago
    cleaned up and dropped, a new one loaded in its place. Returns a weak reference to the dropped
    one and the new one; automatic collection is off when this returns."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    origin = GrpcServerCodeLocationOrigin(host="localhost", socket=sock, location_name="storehouse")

    def load(instance):  # and look at its jobs, as the daemon's schedules and sensors do
        location = origin.create_location(instance)
        assert [job.job_snapshot for repo in location.get_repositories().values() for job in repo.get_all_jobs()]
        return location

    with dg.DagsterInstance.ephemeral() as instance:
        # The process's first location is kept for good: Dagster compiles each record class's
        # constructor at its first call with that caller's locals among the function's globals
        # (dagster_shared.record: EvalContext.update_from_frame). One copy, the same in the daemon.
        load(instance).cleanup()
        old = load(instance)
        gc.collect()  # long-lived by now, as after a minute in the daemon
        gc.disable()  # no automatic collection from here on: what is freed is freed by reference counting
        new = load(instance)
        ref = weakref.ref(old)
        old.cleanup()
        del old
        new.cleanup()  # stops its heartbeat; the object stays, as the daemon's current location
    return ref, new


def test_a_dropped_code_location_outlives_reference_counting(code_server, gc_restored):
    ref, _current = reload(code_server)
    assert ref() is not None, "Dagster's code location no longer refers to itself: storehouse.daemon can go"
    gc.collect()
    assert ref() is None


def test_the_collector_frees_a_dropped_code_location(code_server, gc_restored):
    ref, _current = reload(code_server)
    stop = start_collector(interval_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref() is None
    finally:
        stop.set()


def test_the_daemon_command_starts_the_collector(monkeypatch):
    import dagster._daemon.cli

    seen = {}

    def dagster_daemon(**kwargs):  # stands in for Dagster's CLI only: what runs beside it is ours
        seen["kwargs"] = kwargs
        seen["collector"] = [t.name for t in threading.enumerate() if t.name == "storehouse-gc" and t.is_alive()]

    started = []  # the real collector, stopped after the test so it runs no collection in later tests
    monkeypatch.setattr(daemon, "start_collector", lambda: started.append(start_collector()) or started[-1])
    monkeypatch.setattr(dagster._daemon.cli, "cli", dagster_daemon)
    try:
        daemon.main()
    finally:
        for stop in started:
            stop.set()
    assert seen == {"kwargs": {"obj": {}, "prog_name": "dagster-daemon"}, "collector": ["storehouse-gc"]}


def test_the_command_is_dagster_daemon():
    out = subprocess.run([sys.executable, "-m", "storehouse.daemon", "run", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: dagster-daemon run")
    assert "--workspace" in out.stdout
