"""The one ``Definitions`` Storehouse has: per-domain pieces merged, resources bound once.

Importing this module has no side effect: it reads no setting, opens no database and writes no
file. What depends on the environment (the Slack URL's presence, the warehouse's dialect for the
Columns tab, the dbt manifest the marts are read from) is read when Dagster loads the definitions
(``defs``, a ``@dg.definitions`` function; ``build_defs()`` for code and tests), once per process.
"""

import functools
import os
import warnings
from datetime import timedelta

import dagster as dg
from sqlalchemy.engine import make_url

from assets.api_tables import api_tables
from assets.common import with_column_schema
from assets.orders import CommerceServicesResource
from assets.studio_housekeeping import StudioStorageResource
from pipelines import mx_merchant
from pipelines import esim
from pipelines import pos
from pipelines import orders
from pipelines import studio
from resources.dagster_resources import EsimProvidersResource
from resources.dagster_resources import MxMerchantResource
from resources.dagster_resources import PosClientsResource
from resources.dagster_resources import SlackResource
from resources.warehouse import WarehouseResource
from sensors.abandoned_syncs import abandoned_syncs
from sensors.alerts import run_failure_alerts
from sensors.pos_webhooks import build_pos_webhook_sensor
from sensors.sync_requests import build_sync_request_sensor
from sensors.tenants import build_tenant_discovery_sensor
from settings import Settings

JOBS_BY_SYSTEM = {**mx_merchant.JOBS_BY_SYSTEM, **esim.JOBS_BY_SYSTEM, **pos.JOBS_BY_SYSTEM, **orders.JOBS_BY_SYSTEM}
ALL_JOBS = list({job.name: job for job in JOBS_BY_SYSTEM.values()}.values())
SLACK_URL_VAR = "STOREHOUSE_SLACK_ALERTS_URL"


def slack_resource() -> SlackResource:
    """Slack alerts when ``STOREHOUSE_SLACK_ALERTS_URL`` is set. The URL is the secret: it is
    passed as an ``EnvVar`` (resolved when a run starts), so the UI shows the variable's name."""
    if os.environ.get(SLACK_URL_VAR):
        return SlackResource(webhook_url=dg.EnvVar(SLACK_URL_VAR))
    return SlackResource()


_warehouse, _esim_providers = WarehouseResource(), EsimProvidersResource()
RESOURCES = {  # Slack's is added by build_defs: whether it has a URL is read from the environment
    "warehouse": _warehouse,
    "mx_merchant": MxMerchantResource(),
    "esim_providers": _esim_providers,
    "pos_clients": PosClientsResource(),
    "commerce": CommerceServicesResource(warehouse=_warehouse, esim_providers=_esim_providers),
    "studio_storage": StudioStorageResource(),
}

SENSORS = [
    build_tenant_discovery_sensor(JOBS_BY_SYSTEM),
    build_sync_request_sensor(JOBS_BY_SYSTEM),
    run_failure_alerts,
    abandoned_syncs,
    build_pos_webhook_sensor(pos.pos_inventory_job.name),
]

# Freshness, applied in bulk: stale when the refresh schedule has missed twice (by asset, else by group).
# The marts take the default: the hourly job rebuilds a mart only when its inputs changed, so an hour
# without a materialisation is a mart whose sources stood still (theirs flag a stalled sync).
FRESHNESS = {
    "mx_merchant": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    "esim": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=13), warn_window=timedelta(hours=7)),
    "orders": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    "pos": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26)),
    "pos/inventory": dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=45),
                                                    warn_window=timedelta(minutes=30)),  # every 15 minutes
}
DEFAULT_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))


EXTERNAL_GROUPS = {"api", "platform"}  # written outside Dagster: no materialisation to be fresh by


def warehouse_dialect() -> str:
    """The Columns tab shows each column's type as the configured warehouse (DATABASE_URL) stores it."""
    return make_url(Settings().warehouse_url).get_backend_name()


def _finish(spec: dg.AssetSpec, dialect: str) -> dg.AssetSpec:
    if spec.group_name not in EXTERNAL_GROUPS:
        policy = FRESHNESS.get(spec.key.to_user_string()) or FRESHNESS.get(spec.group_name or "", DEFAULT_FRESHNESS)
        spec = dg.apply_freshness_policy(spec, policy, overwrite_existing=False)
    return with_column_schema(spec, dialect)


@functools.cache
def build_defs() -> dg.Definitions:
    """The Definitions, built once per process (reads the environment and the dbt manifest)."""
    from pipelines import marts  # reads the dbt manifest (and re-parses it under `dagster dev`)

    core = dg.Definitions(assets=api_tables, sensors=SENSORS, resources={**RESOURCES, "slack": slack_resource()})
    dialect = warehouse_dialect()
    with warnings.catch_warnings():  # map_asset_specs is a preview API, chosen on purpose: one table for every asset
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.Definitions.merge(core, mx_merchant.defs, esim.defs, pos.defs, orders.defs, studio.defs,
                                    marts.defs
                                    ).map_asset_specs(func=lambda spec: _finish(spec, dialect))


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` / the code server load (``[tool.dagster] module_name``)."""
    return build_defs()
