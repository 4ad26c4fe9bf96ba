"""The Definitions load, and every asset is a proper UI citizen."""

import pytest

from pipelines.definitions import defs


def test_definitions_load():
    assert defs.resolve_job_def("mx_merchant_sync")
    assert {s.name for s in defs.sensors} >= {"tenant_discovery", "sync_requests", "run_failure_alerts"}


@pytest.mark.parametrize("spec", list(defs.resolve_all_asset_specs()), ids=lambda s: s.key.to_user_string())
def test_every_asset_has_group_kinds_owners_description(spec):
    assert spec.group_name and spec.group_name != "default"
    assert spec.kinds
    assert spec.owners
    assert spec.description and len(spec.description) > 20
