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
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject, dbt_assets

from assets import marts_gate
from assets.common import OWNERS, table_metadata
from resources.dbt import MANIFEST, PROJECT_DIR, TARGET_DIR, prepare_manifest, profiles_dir, run_dbt
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
    """Models keep their folder as key prefix (``orders/mart_orders_daily`` as before the move)."""

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
    """``dbt build`` of the selected models and their tests on the run's warehouse, but for the
    marts a failed blocking check upstream holds back (``assets.marts_gate``)."""
    exclude, held_back = marts_gate.gate(context)
    yield from held_back
    yield from dbt_build(context, warehouse.resolved_url, exclude)


def dbt_build(context: dg.AssetExecutionContext, url: str, exclude: tuple[str, ...] = ()) -> Iterator:
    """``dbt build`` in this process (``resources.dbt.run_dbt``: no ``dbt`` subprocess to start),
    selected as dagster-dbt's ``DbtCliResource`` would select it for this run, its results turned
    into Dagster events by dagster-dbt's own event translation. The events come once dbt is done."""
    from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

    params = get_updated_cli_invocation_params_for_context(context=context, manifest={},
                                                          dagster_dbt_translator=translator)
    args = ["build", "--no-write-json", *params.selection_args, *exclude]  # manifest.json and run_results.json: 0.5-1.5 s, unread
    if params.indirect_selection:
        args += ["--indirect-selection", params.indirect_selection]
    project_dir = PROJECT_DIR if params.dbt_project is None else params.dbt_project.project_dir
    target = TARGET_DIR / f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}"
    target.mkdir(parents=True, exist_ok=True)
    if (TARGET_DIR / "partial_parse.msgpack").exists():  # parse only what changed since prepare_manifest
        shutil.copy(TARGET_DIR / "partial_parse.msgpack", target / "partial_parse.msgpack")
    results: list[dict] = []

    def keep(event: dict) -> None:
        if event["info"]["name"] in ("LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"):
            results.append(event)

    outcome = run_dbt(args, url, profiles_dir(), target_path=target, check=False, project_dir=project_dir,
                      on_event=keep)
    for raw in results:
        yield from DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={}).to_default_asset_events(
            manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator, context=context,
            target_path=target, project=params.dbt_project)
    if outcome.returncode != 0:
        raise dg.Failure(f"dbt {' '.join(args)} failed", metadata={"log": dg.MetadataValue.md(
            f"```\n{outcome.stdout[-6000:]}\n```")})


def mart_key(model: str) -> dg.AssetKey:
    """The asset key of a model by name (as the translator gives it)."""
    from dagster_dbt import get_asset_key_for_model

    return get_asset_key_for_model([warehouse_marts], model)
