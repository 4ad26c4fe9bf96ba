"""The shape of the Definitions, compared with a committed snapshot so a structural change is a visible diff.

Asset keys with their group, kinds and partition set; checks with their partition set and whether
they block what is downstream; jobs, schedules and sensors. After an intended change, refresh it:

    STOREHOUSE_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_definitions_snapshot.py

and commit ``tests/snapshots/definitions.txt`` with the change (the diff is the review).
"""

import os
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
ADAPTERS = {"sqlite", "postgres"}  # a dbt model's kind names the adapter the manifest was parsed for: left out


def _partitions(partitions_def) -> str:
    return getattr(partitions_def, "name", None) or ("-" if partitions_def is None else type(partitions_def).__name__)


def render(defs: dg.Definitions) -> str:
    graph = defs.resolve_asset_graph()
    lines = ["# assets: key | group | partitions | kinds | executable"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        lines.append(f"{key.to_user_string()} | {node.group_name} | {_partitions(node.partitions_def)} | "
                     f"{','.join(sorted(node.kinds - ADAPTERS))} | {'yes' if node.is_executable else 'external'}")
    lines.append("")
    lines.append("# checks: asset:check | partitions | blocking")
    checks = sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name))
    for check in checks:
        spec = graph.get_check_spec(check)
        lines.append(f"{check.asset_key.to_user_string()}:{check.name} | {_partitions(spec.partitions_def)} | "
                     f"{'blocking' if spec.blocking else '-'}")
    lines.append("")
    lines.append("# jobs: name | partitions | assets or ops")
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name == "__ASSET_JOB":
            continue
        assets = sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
        nodes = assets or [f"op {n.name}" for n in job.nodes]
        lines.append(f"{job.name} | {_partitions(job.partitions_def)} | {', '.join(nodes) if len(nodes) < 8 else f'{len(nodes)} assets'}")
    lines.append("")
    lines.append("# schedules: name | job | cron | default status")
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        lines.append(f"{schedule.name} | {schedule.job_name} | {schedule.cron_schedule} | {schedule.default_status.value}")
    lines.append("")
    lines.append("# sensors: name | jobs | default status")
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        jobs = sorted(t.job_name for t in sensor.targets)
        lines.append(f"{sensor.name} | {', '.join(jobs) or '-'} | {sensor.default_status.value}")
    return "\n".join(lines) + "\n"


def test_definitions_match_the_snapshot():
    current = render(build_defs())
    if os.environ.get("STOREHOUSE_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with STOREHOUSE_UPDATE_SNAPSHOT=1"
    assert current == SNAPSHOT.read_text(), (
        "the Definitions changed shape; if intended: STOREHOUSE_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest "
        "tests/test_definitions_snapshot.py, and commit tests/snapshots/definitions.txt")
