"""The Dagster instance and the warehouse our sensors and schedules read, without building either per tick.

The daemon asks the code server to evaluate a sensor or schedule with a context holding its
instance's *ref*. ``context.instance`` builds a ``DagsterInstance`` from that ref (on
``dagster-postgres``: three storages, each a new engine reflecting its tables over new
connections) and disposes of it when the tick ends; ``context.resources`` does the same for any
sensor that takes a resource (dagster-io/dagster#14345), and ``context.log`` for any tick that
logs. ``python bench/sensor_ticks.py`` measures it: 15-25 ms of CPU and six PostgreSQL connections
a tick, about 25 times a minute at our sensors' intervals.

So our sensors and schedules take no resource: ``instance_of``, called first in each, keeps one
instance per ref for the process and gives it to the tick's context; ``warehouse_of`` builds the
Definitions' warehouse resource once per process."""

from __future__ import annotations

import threading
import weakref

import dagster as dg

from resources.warehouse import WarehouseResource

Context = dg.SensorEvaluationContext | dg.ScheduleEvaluationContext

_instances: dict[str, dg.DagsterInstance] = {}
_warehouses: weakref.WeakKeyDictionary[dg.ResourceDefinition, WarehouseResource] = weakref.WeakKeyDictionary()
_lock = threading.RLock()  # warehouse_of asks instance_of while it holds it


def instance_of(context: Context) -> dg.DagsterInstance:
    """The instance the tick reads: one per instance ref for the life of the process (gRPC serves
    ticks from a thread pool; a ``DagsterInstance`` is shared across threads in the webserver and
    daemon too). The context is given it as well, before anything reads ``context.instance``: the
    tick's log (``context.log``) and Dagster's check of the partitions of the run requests a tick
    returns read it there. A context built with an instance (tests, the CLI) keeps its own."""
    ref = context.instance_ref
    if ref is None:
        return context.instance
    key = dg.serialize_value(ref)
    with _lock:
        if key not in _instances:
            _instances[key] = dg.DagsterInstance.from_ref(ref)
        shared = _instances[key]
    if context._instance is None:  # noqa: SLF001 (no public way in; tests/test_tick_context.py guards it)
        context._instance = shared  # not entered in the context's exit stack: the tick's end leaves it open
    return shared


def warehouse_of(context: Context) -> WarehouseResource:
    """The warehouse resource: the one given to the context (``build_sensor_context(resources=...)``),
    else the Definitions' (``resources["warehouse"]``), else the default (``DATABASE_URL`` or SQLite).
    Built once per resource definition for the process: building it is ~10 ms, and ~190 ms with an
    in-memory Dagster instance made for it (``build_resources`` without an instance) when the
    context holds none."""
    definitions = context.resource_defs or {}
    if "warehouse" not in definitions:
        try:
            repository = context.repository_def
        except dg.DagsterInvariantViolationError:  # a schedule context built without one
            repository = None
        definitions = repository.get_top_level_resources() if repository is not None else {}
    definition = definitions.get("warehouse")
    if definition is None:
        return WarehouseResource()
    with _lock:
        if definition not in _warehouses:
            instance = instance_of(context) if context.instance_ref or context._instance else None  # noqa: SLF001
            with dg.build_resources({"warehouse": definition}, instance=instance) as built:
                _warehouses[definition] = built.warehouse
        return _warehouses[definition]
