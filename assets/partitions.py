"""The tenant partition set, owned by the tenant-discovery sensor (never added to inside an asset)."""

import dagster as dg

TENANT_PARTITIONS = "tenant"
tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANT_PARTITIONS)
