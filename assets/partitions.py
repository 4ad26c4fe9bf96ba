"""The tenant partition set, owned by the tenant-discovery sensor (never added to inside an asset)."""

import warnings

import dagster as dg

TENANT_PARTITIONS = "tenant"
tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANT_PARTITIONS)


def tenant_check(name: str, asset: dg.AssetKey, description: str, **kwargs) -> dg.AssetCheckSpec:
    """A check with one result per tenant: a tenant's failure stays visible whatever the next
    tenant's run says. (Partitioned checks are a preview API in Dagster 1.13, chosen on purpose.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=tenant_partitions,
                                 **kwargs)
