"""The analysts' marts: the dbt project in ``analytics/``, loaded with dagster-dbt.

Each dbt model is one asset, drawn downstream of the ingestion assets its sources name
(``sources.yml``), with the model's description and columns from its ``schema.yml``; each dbt
test is an asset check. The models are not partitioned: every one is per tenant by a
``tenant_id`` column and rebuilds all tenants at once (one ``dbt build``), which keeps cross-tenant
models (the platform summary) and the tests' per-tenant reconciliations whole; a tenant variable
would need every model incremental by tenant for no gain at this size.

The manifest is read when the definitions load, never built then: ``prepare_manifest`` (run by
``./dev`` set-up, the test session, ``storehouse demo`` and ``dagster dev``) parses the project
beforehand.
"""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets.common import OWNERS, table_metadata
from resources.dbt import (MANIFEST, PASSWORD_VAR, PROJECT_DIR, TARGET_DIR, dbt_env, dbt_executable, prepare_manifest,
                           profiles_dir, write_profiles)
from resources.warehouse import WarehouseResource
from warehouse.tables import metadata

GROUP = "marts"

project = DbtProject(project_dir=PROJECT_DIR, target_path=TARGET_DIR)

if os.environ.get("DAGSTER_IS_DEV_CLI"):  # `dagster dev`: re-parse so an analyst's new model shows at once
    prepare_manifest()

if not MANIFEST.exists():
    raise RuntimeError(f"the dbt manifest {MANIFEST} is missing: run `./dev setup` "
                       "(or `python -m resources.dbt parse`) to prepare it")


class MartsTranslator(DagsterDbtTranslator):
    """Models keep their folder as key prefix (``shop/mart_orders_daily`` as before the move)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey([dbt_resource_props["fqn"][1], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP if dbt_resource_props["resource_type"] == "model" else super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS


# The platform's own tables the models read that no single asset writes (every sync records itself):
# shown as the warehouse tables they are, with their columns, upstream of the models that read them.
platform_tables = [
    dg.AssetSpec(["warehouse", name], group_name="platform", owners=OWNERS, kinds={"sql"},
                 description=f"Warehouse table `{name}`: {metadata.tables[name].comment}",
                 metadata=table_metadata(metadata.tables[name]))
    for name in ("tenants", "sync_runs", "quarantine")
]

translator = MartsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_duplicate_source_asset_keys=True))


@dbt_assets(manifest=MANIFEST, project=project, dagster_dbt_translator=translator, name="warehouse_marts")
def warehouse_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """``dbt build`` of the selected models and their tests on the run's warehouse."""
    url = warehouse.resolved_url
    profiles = write_profiles(url, profiles_dir())
    os.environ[PASSWORD_VAR] = dbt_env(url)[PASSWORD_VAR]  # read by the profile's env_var(); never in a file
    dbt = DbtCliResource(project_dir=project, profiles_dir=str(profiles), dbt_executable=dbt_executable())
    yield from dbt.cli(["build"], context=context).stream()


def mart_key(model: str) -> dg.AssetKey:
    """The asset key of a model by name (as the translator gives it)."""
    from dagster_dbt import get_asset_key_for_model

    return get_asset_key_for_model([warehouse_marts], model)
