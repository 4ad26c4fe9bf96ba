"""The analysts' marts: the dbt project in ``analytics/``, loaded with dagster-dbt.

Each dbt model is one asset, drawn downstream of the ingestion assets its sources name
(``sources.yml``), with the model's description and columns from its ``schema.yml``; each dbt
test is an asset check, on its model, or on the source table it is written on (the studio's
checks: those run first, and a failure holds back the marts on that table, ``assets.marts_gate``).
The models are not partitioned: every one is per tenant by a ``tenant_id`` column and rebuilds all
tenants at once (one ``dbt build``), which keeps cross-tenant models (the platform summary) and the
tests' per-tenant reconciliations whole; a tenant variable would need every model incremental by
tenant for no gain at this size.

The ``marts`` job (hourly) builds only the models whose inputs changed since their last build
(``changed_only``, ``assets.marts_changes``); materialising marts from the asset graph builds
every one selected. Either way each build records the digest of its inputs.

The manifest is read when the definitions load, never built then: ``prepare_manifest`` (run by
``./dev`` set-up, the test session, ``storehouse demo`` and ``dagster dev``) parses the project
beforehand.
"""


import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject, dbt_assets
from pydantic import Field

from assets import marts_changes, marts_gate
from assets.common import OWNERS, markdown_table, table_metadata
from resources.dbt import (MANIFEST, PROJECT_DIR, PRUNE_REMOVED_TENANTS, TARGET_DIR, TESTS_THIS_BUILD_ONLY, parse_state,
                           prepare_manifest, profile_target, profiles_dir, run_dbt)
from resources.warehouse import WarehouseResource
from warehouse.db import make_engine
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

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        """Plus the upstream assets a model names in ``meta.dagster.deps``: those that write columns
        of a source table another asset owns (MX invoice links and product categories on
        ``transactions``)."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        extra = self.get_resource_props(manifest, unique_id).get("config", {}).get("meta", {}).get("dagster", {}).get("deps")
        if not extra:
            return spec
        return spec.replace_attributes(deps=[*spec.deps, *(dg.AssetDep(dg.AssetKey(key)) for key in extra)])

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: DbtProject | None) -> dg.AssetCheckSpec | None:
        """With the test's own description (``description:`` in its yml) when it has one."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        description = manifest["nodes"][unique_id].get("description")
        return spec._replace(description=description) if spec and description and not spec.description else spec


# The platform's own tables the models read that no single asset writes (every sync records itself):
# shown as the warehouse tables they are, with their columns, upstream of the models that read them.
platform_tables = [
    dg.AssetSpec(["warehouse", name], group_name="platform", owners=OWNERS, kinds={"sql"},
                 description=f"Warehouse table `{name}`: {metadata.tables[name].comment}",
                 metadata=table_metadata(metadata.tables[name]))
    for name in ("tenants", "sync_runs", "quarantine")
]

translator = MartsTranslator(settings=DagsterDbtTranslatorSettings(
    enable_asset_checks=True, enable_duplicate_source_asset_keys=True,
    enable_source_tests_as_checks=True,  # the checks on the source tables (the studio's, sources.yml)
))


class MartsConfig(dg.Config):
    changed_only: bool = Field(default=False, description=(
        "Build only the selected models whose inputs (sources, SQL, parents) changed since their last "
        "build, with their tests; the others are up to date. The hourly `marts` job sets it."))


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The parsed project, each test written on a source table attached to that table.

    dbt attaches a generic test to the model it is written on, never to a source; dagster-dbt then
    finds a source test's table only when the test reads nothing else, and the studio's checks also
    read lines, payments and the tenants. Attached here, each becomes a check on its table's asset
    (``api/studio_invoices``), which the marts downstream of it wait for."""
    manifest = json.loads(path.read_text())
    sources = {(s["source_name"], s["name"]): uid for uid, s in manifest["sources"].items()}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and not node.get("attached_node") \
                and str(node.get("file_key_name", "")).startswith("sources."):
            written_on = SOURCE_OF_TEST.search(node.get("test_metadata", {}).get("kwargs", {}).get("model", ""))
            if written_on and written_on.groups() in sources:
                node["attached_node"] = sources[written_on.groups()]
    return manifest


SOURCE_OF_TEST = re.compile(r"source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)")


@dbt_assets(manifest=load_manifest(), project=project, dagster_dbt_translator=translator, name="warehouse_marts")
def warehouse_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: MartsConfig):
    """``dbt build`` of the selected models and their tests on the run's warehouse: first the
    checks on the source tables they read, then the models, but for the marts a failed blocking
    check upstream holds back (``assets.marts_gate``) and, with ``changed_only``, those whose inputs
    did not change (``assets.marts_changes``)."""
    from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context

    url, failures = warehouse.resolved_url, []
    params = get_updated_cli_invocation_params_for_context(context=context, manifest={},
                                                          dagster_dbt_translator=translator)
    keys = model_keys(context)
    selected = {name for name, key in keys.items() if key in context.selected_asset_keys}
    plan = marts_changes.plan(url, manifest_of(context), marts_changes.recorded_inputs(context.instance, keys))
    candidates = selected & plan.stale if config.changed_only else selected
    checked = yield from source_checks(context, url, failures, params, {keys[name] for name in candidates},
                                       selected_too=not config.changed_only)
    held, observed = marts_gate.gate(context, checked, {keys[name] for name in candidates} if config.changed_only else None)
    yield from observed
    build = candidates - set(held)
    if config.changed_only:
        context.log.info(f"{len(build)} of {len(selected)} selected marts to build (inputs changed): "
                         f"{', '.join(sorted(build)) or 'none'}")
    if build:
        yield from dbt_build(context, url, failures, params, plan, None if build == selected else build,
                             skip=sorted({key.name for key in checked}),
                             prune_tenants=plan.prune_tenants or not config.changed_only,
                             this_build_only=config.changed_only)
    if failures:  # after every clean mart is built
        raise dg.Failure("; ".join(f.description for f in failures), metadata=failures[-1].metadata)


def model_keys(context: dg.AssetExecutionContext) -> dict[str, dg.AssetKey]:
    """model name -> asset key, for every model of the asset."""
    return {props["name"]: translator.get_asset_key(props) for props in manifest_of(context)["nodes"].values()
            if props["resource_type"] == "model"}


def manifest_of(context: dg.AssetExecutionContext) -> Mapping[str, Any]:
    from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

    return get_manifest_and_translator_from_dbt_assets([context.assets_def])[0]


def source_check_keys(assets_def: dg.AssetsDefinition) -> list[dg.AssetCheckKey]:
    """The checks on source tables (the studio's) among the asset's checks: the ``marts`` job
    selects them beside the marts (``pipelines/marts.py``), as the asset evaluates them."""
    return sorted((key for key in assets_def.check_keys if key.asset_key not in assets_def.keys), key=str)


def checks_on_sources(context: dg.AssetExecutionContext, marts: set[dg.AssetKey],
                      selected_too: bool = True) -> set[dg.AssetCheckKey]:
    """The checks on source tables this run evaluates: those on the tables upstream of the marts
    about to be built (dagster-dbt runs a mart's source checks with it), and (``selected_too``)
    those selected on the tables themselves; a mart left alone as up to date needs none. The
    hourly job selects every source check but evaluates only those its builds need."""
    from dagster_dbt.asset_utils import get_checks_on_sources_upstream_of_selected_assets

    own = set(context.assets_def.keys)
    upstream = get_checks_on_sources_upstream_of_selected_assets(context.assets_def, marts) if marts else set()
    selected = context.selected_asset_check_keys if selected_too else set()
    return {key for key in {*selected, *upstream} if key.asset_key not in own}


def source_checks(context: dg.AssetExecutionContext, url: str, failures: list, params,
                  marts: set[dg.AssetKey], selected_too: bool = True) -> Iterator:
    """``dbt test`` of the checks on the source tables first, on their own: dbt does not skip a
    model when a test on its source fails, so the gate must know before the models build. Returns
    each check's outcome (check key -> passed). The ``marts`` job selects these checks; a run that
    selects marts alone (``asset_selection``) gets their results too, which Dagster records with a
    warning that they were not selected."""
    keys = checks_on_sources(context, marts, selected_too)
    if not keys:
        return {}
    outcomes: dict[dg.AssetCheckKey, bool] = {}
    for event in dbt_invoke(context, url, ["test", "--no-write-json", "--select", *sorted({k.name for k in keys})],
                            failures, params, on_check=lambda result, target: with_failing_rows(url, result, target)):
        if isinstance(event, dg.AssetCheckResult) and event.asset_key is not None:
            outcomes[dg.AssetCheckKey(event.asset_key, event.check_name)] = event.passed
        yield event
    return outcomes


def with_failing_rows(url: str, result: dg.AssetCheckResult, target: Path) -> dg.AssetCheckResult:
    """A failed source check with what it found: the first rows its SQL returns (the documents that
    break it) and their tenants. It checks every tenant at once, so its result says which."""
    compiled = next((target / "compiled").rglob(f"{result.check_name}.sql"), None)
    if result.passed or compiled is None:
        return result
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(f"select * from ({compiled.read_text()}) failing limit {FAILING_ROWS}")
            columns, rows = list(found.keys()), found.all()
    finally:
        engine.dispose()
    tenants = sorted({str(row._mapping["tenant_id"]) for row in rows}) if "tenant_id" in columns else []
    return result._replace(metadata={**result.metadata, "tenants": dg.MetadataValue.text(", ".join(tenants)),
                                     "failing_rows": dg.MetadataValue.md(markdown_table(columns, rows))})


FAILING_ROWS = 20


def dbt_build(context: dg.AssetExecutionContext, url: str, failures: list, params, plan: marts_changes.Plan,
              only: set[str] | None = None, skip: list[str] = (), prune_tenants: bool = True,
              this_build_only: bool = False) -> Iterator:
    """``dbt build``, selected as dagster-dbt's ``DbtCliResource`` would select it for this run
    (``params``), or ``only`` those models with the tests whose parents are all built or upstream
    (``buildable``), less the source checks already run (``skip``); each model's output carries the
    digest of its inputs (``plan``). ``this_build_only``: the incremental models' tests read only
    the rows this build wrote (``analytics/macros/builds.sql``; the rows it left were tested when
    written), else whole tables."""
    args = ["build", "--no-write-json"]  # manifest.json and run_results.json: 0.5-1.5 s, unread
    if only is None:
        args += params.selection_args
        if params.indirect_selection:
            args += ["--indirect-selection", params.indirect_selection]
    else:
        args += ["--select", *sorted(only), "--indirect-selection", "buildable"]
    if skip:
        args += ["--exclude", *skip]
    yield from dbt_invoke(context, url, args, failures, params, plan=plan, env={
        PRUNE_REMOVED_TENANTS: "true" if prune_tenants else "false",
        TESTS_THIS_BUILD_ONLY: "true" if this_build_only else "false"})


def dbt_invoke(context: dg.AssetExecutionContext, url: str, args: list[str], failures: list, params,
               on_check: Callable[[dg.AssetCheckResult, Path], dg.AssetCheckResult] | None = None,
               plan: marts_changes.Plan | None = None, env: dict[str, str] | None = None) -> Iterator:
    """One dbt command in this process (``resources.dbt.run_dbt``: no ``dbt`` subprocess to start),
    its results turned into Dagster events by dagster-dbt's own event translation; the events come
    once dbt is done (``on_check`` may add to each check result while the compiled SQL is there).
    A failure is appended to ``failures`` (raised once everything has run)."""
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

    project_dir = PROJECT_DIR if params.dbt_project is None else params.dbt_project.project_dir
    results: list[dict] = []  # each node's outcome (RESULT_EVENTS), as dbt's JSON log prints it

    # The run's own target folder (compiled SQL), gone with the run: nothing read from it afterwards.
    with tempfile.TemporaryDirectory(prefix=f"{context.op_execution_context.op.name}-") as folder:
        target = Path(folder)
        state = parse_state(url)  # parse only what changed since the last run here (else since prepare_manifest)
        for parsed in (state, TARGET_DIR / "partial_parse.msgpack"):
            if parsed.exists():
                shutil.copy(parsed, target / "partial_parse.msgpack")
                break
        outcome = run_dbt(args, url, profiles_dir(), target_path=target, check=False, project_dir=project_dir,
                          on_event=results.append, events=RESULT_EVENTS,
                          env={PRUNE_REMOVED_TENANTS: "false", TESTS_THIS_BUILD_ONLY: "false", **(env or {})})
        if (target / "partial_parse.msgpack").exists():
            state.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(target / "partial_parse.msgpack", state.with_suffix(".tmp"))
            state.with_suffix(".tmp").replace(state)  # whole or not at all, for a run beside this one
        columns = BuiltColumns(url)
        for raw in results:
            for event in DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={}).to_default_asset_events(
                    manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator, context=context,
                    target_path=target, project=params.dbt_project):
                if isinstance(event, dg.Output):
                    event = columns.add_to(event, context)
                    if plan is not None:
                        event = event.with_metadata({**event.metadata, **plan.metadata(
                            context.asset_key_for_output(event.output_name).path[-1])})
                elif on_check is not None and isinstance(event, dg.AssetCheckResult):
                    event = on_check(event, target)
                yield event
        columns.close()
    if outcome.returncode != 0:
        failures.append(dg.Failure(failure_message(args, results), metadata={"log": dg.MetadataValue.md(
            f"```\n{outcome.stdout[-6000:]}\n```")}))


RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})  # a node's outcome


class BuiltColumns:
    """The Columns tab of each model built: its columns with the types the warehouse gave them (the
    definitions know only the descriptions of ``schema.yml``: dbt learns types by building)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.schema = profile_target(url)["schema"]  # where the models are built

    def add_to(self, output: dg.Output, context: dg.AssetExecutionContext) -> dg.Output:
        key = context.asset_key_for_output(output.output_name)
        described = context.assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
        descriptions = {c.name: c.description for c in described.columns} if described else {}
        try:
            built = sa.inspect(self.engine).get_columns(key.path[-1], schema=self.schema)
        except sa.exc.NoSuchTableError:
            return output
        schema = dg.TableSchema(columns=[
            dg.TableColumn(c["name"], type=self.type_of(key.path[-1], c), description=descriptions.get(c["name"]))
            for c in built])
        return output.with_metadata({**output.metadata, "dagster/column_schema": schema})

    def type_of(self, table: str, column: dict) -> str:
        """The declared type; on SQLite, a column computed by an expression declares none: the type
        its values are stored as (``typeof``), ``?`` while it has none."""
        if not isinstance(column["type"], sa.types.NullType):
            return str(column["type"]).lower()
        if self.engine.dialect.name != "sqlite":
            return "?"
        name = self.engine.dialect.identifier_preparer.quote(column["name"])
        with self.engine.connect() as conn:
            stored = conn.exec_driver_sql(f'select typeof({name}) from "{table}" where {name} is not null limit 1').scalar()
        return stored or "?"

    def close(self) -> None:
        self.engine.dispose()


def failure_message(args: list[str], results: list[dict]) -> str:
    """What a failed build says first: the models that errored and the tests that failed, by name."""
    failed = [f"{e['data']['node_info']['node_name']} ({e['data']['node_info']['node_status']})" for e in results
              if e["data"].get("node_info", {}).get("node_status") in ("error", "fail", "runtime error")]
    what = f": {len(failed)} failed: {', '.join(failed)}" if failed else " (dbt itself failed: see the log)"
    return f"dbt {' '.join(args[:1])} failed{what}"


def mart_key(model: str) -> dg.AssetKey:
    """The asset key of a model by name (as the translator gives it)."""
    from dagster_dbt import get_asset_key_for_model

    return get_asset_key_for_model([warehouse_marts], model)
