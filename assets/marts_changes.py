"""What the hourly ``marts`` job builds: the models whose inputs changed since their last build.

A model's inputs are its SQL with the config and macros it compiles with, the source tables it
reads and, through its parent models, theirs. Every build records a digest of them on the model's
materialization (``storehouse/inputs``); the job computes the digests anew before dbt starts and
builds only the selected models whose digest moved, a model never built (or whose table is gone)
included, with their tests. The others are up to date: their tables hold what a build would give.

A source table's state is a few aggregates that move with any change a mart would see
(``sources.yml``: ``meta.storehouse.changed``, ``count(*), max(updated_at)`` by default): one
query per table, nothing of what the models computed is read. A model whose rows move with the
clock (``meta.storehouse.rebuild_every``: ``hour`` or ``day``) has the hour or day in its digest.

Dagster's own staleness cannot serve here: the shop API writes orders, payments and provisioning
attempts outside any Dagster run, so no materialisation of theirs says that they changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from resources.dbt import profile_target
from warehouse.db import make_engine

INPUTS = "storehouse/inputs"  # materialisation metadata: the digest of the model's inputs it was built from
TENANTS = "storehouse/tenants"  # and the tenants table's state then (the incremental models' pre-hook prunes on a move)
DEFAULT_CHANGED = "count(*), max(updated_at)"
TENANTS_SOURCE = "source.storehouse.warehouse.tenants"
CLOCK = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}


def source_states(url: str, manifest: Mapping[str, Any]) -> dict[str, str]:
    """Each source table's state: its ``changed`` aggregates, as text (one query per table)."""
    engine = make_engine(url)
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.connect() as conn:
            return {uid: json.dumps([str(v) for v in conn.exec_driver_sql(
                        f"select {changed(source)} from {quote(source['identifier'])}").one()])
                    for uid, source in sorted(manifest["sources"].items())}
    finally:
        engine.dispose()


def changed(source: Mapping[str, Any]) -> str:
    return source["config"].get("meta", {}).get("storehouse", {}).get("changed", DEFAULT_CHANGED)


def model_digests(manifest: Mapping[str, Any], states: Mapping[str, str], now: dt.datetime) -> dict[str, str]:
    """unique id -> digest of every input of the model, its parents' digests included."""
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    macros = manifest["macros"]
    digests: dict[str, str] = {}

    def macro_closure(names: list[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in macros and name not in seen:
                seen.add(name)
                todo.extend(macros[name]["depends_on"]["macros"])
        return seen

    def digest(uid: str) -> str:
        if uid not in digests:
            node = nodes[uid]
            every = node["config"].get("meta", {}).get("storehouse", {}).get("rebuild_every")
            parts = [node["checksum"]["checksum"], json.dumps(node["config"], sort_keys=True, default=str),
                     now.strftime(CLOCK[every]) if every else "",
                     *(macros[m]["macro_sql"] for m in sorted(macro_closure(node["depends_on"]["macros"]))),
                     *(f"{p}={states[p]}" if p in states else digest(p) for p in sorted(node["depends_on"]["nodes"]))]
            digests[uid] = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
        return digests[uid]

    return {uid: digest(uid) for uid in nodes}


@dataclass(frozen=True)
class Plan:
    """The digests of this run's models (recorded on what it builds) and what the job builds."""

    digests: dict[str, str]  # model name -> digest now
    tenants: str  # the tenants table's state now
    stale: frozenset[str]  # model names whose inputs moved since their last build (or never built)
    prune_tenants: bool  # the tenants table moved since the last build of some stale model

    def metadata(self, model: str) -> dict[str, str]:
        return {INPUTS: self.digests[model], TENANTS: self.tenants}


def plan(url: str, manifest: Mapping[str, Any], recorded: Mapping[str, Mapping[str, Any]],
         now: dt.datetime | None = None) -> Plan:
    """Compare the models' input digests now with those ``recorded`` at their last build (model
    name -> that materialisation's metadata); a model whose table is missing is stale too."""
    states = source_states(url, manifest)
    by_id = model_digests(manifest, states, now or dt.datetime.now(dt.timezone.utc))
    digests = {manifest["nodes"][uid]["name"]: value for uid, value in by_id.items()}
    present = built_relations(url)
    stale = frozenset(name for name, value in digests.items()
                      if name not in present or text(recorded.get(name, {}).get(INPUTS)) != value)
    tenants = states[TENANTS_SOURCE]
    prune = any(text(recorded.get(name, {}).get(TENANTS)) != tenants for name in stale)
    return Plan(digests, tenants, stale, prune)


def built_relations(url: str) -> set[str]:
    """The tables and views in the schema the models are built in."""
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        schema = profile_target(url)["schema"]
        return {*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)}
    finally:
        engine.dispose()


def text(value: Any) -> str | None:
    return value.value if isinstance(value, dg.MetadataValue) else value


def recorded_inputs(instance: dg.DagsterInstance, keys_by_model: Mapping[str, dg.AssetKey]) -> dict[str, dict]:
    """model name -> the metadata of its latest materialisation (none when never built)."""
    events = instance.get_latest_materialization_events(list(keys_by_model.values()))
    by_key = {key: event.asset_materialization.metadata for key, event in events.items()
              if event is not None and event.asset_materialization is not None}
    return {model: by_key[key] for model, key in keys_by_model.items() if key in by_key}
