"""The tenant partition sets, one per system family, owned by the tenant-discovery sensor alone.

A tenant is a partition (its id the key) only in the sets of the systems it is connected to, so
the UI shows an asset's real tenants instead of every tenant "Missing" where it buys nothing.

The granularity is the job: a Dagster job runs one partitions definition, and each family below
is exactly what one job syncs (``mx_merchant_sync``; ``pos_sync`` and ``pos_inventory_refresh``,
whose assets serve all six POS systems and Portaus through one set of assets; ``esim_catalog_sync``,
whose assets read every eSIM provider a tenant buys from; ``orders_hourly``, for tenants taking
payments through Stripe). A set per POS system or per eSIM provider would need an asset per system,
which the assets do not have: a tenant on Dutchie and a tenant on Treez have the same products.
"""

import warnings

import dagster as dg

from resources.esim import PROVIDERS
from resources.mx_merchant import SYSTEM as MX_MERCHANT
from resources.pos import POS_SYSTEMS
from resources.stripe import SYSTEM as STRIPE

# family -> the systems whose connection makes a tenant one of its partitions
FAMILIES: dict[str, tuple[str, ...]] = {
    "mx_merchant": (MX_MERCHANT,),
    "pos": tuple(POS_SYSTEMS),
    "esim": tuple(PROVIDERS),
    "storefront": (STRIPE,),
}
PARTITION_SETS: dict[str, dg.DynamicPartitionsDefinition] = {
    family: dg.DynamicPartitionsDefinition(name=f"{family}_tenants") for family in FAMILIES
}
mx_merchant_partitions = PARTITION_SETS["mx_merchant"]
pos_partitions = PARTITION_SETS["pos"]
esim_partitions = PARTITION_SETS["esim"]
storefront_partitions = PARTITION_SETS["storefront"]
FAMILY_OF_SYSTEM = {system: family for family, systems in FAMILIES.items() for system in systems}


def partitions_for(systems: str | tuple[str, ...] | list[str]) -> dg.DynamicPartitionsDefinition:
    """The one partition set of ``systems`` (all of one family)."""
    systems = [systems] if isinstance(systems, str) else list(systems)
    families = {FAMILY_OF_SYSTEM[s] for s in systems}
    if len(families) != 1:
        raise ValueError(f"systems {systems} span partition sets {sorted(families)}; a job runs one")
    return PARTITION_SETS[families.pop()]


def tenant_check(name: str, asset: dg.AssetKey, description: str, partitions_def: dg.PartitionsDefinition,
                 **kwargs) -> dg.AssetCheckSpec:
    """A check with one result per tenant of its asset's partition set: a tenant's failure stays
    visible whatever the next tenant's run says. (Partitioned checks are a preview API in Dagster
    1.13, chosen on purpose.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=partitions_def,
                                 **kwargs)
