"""The studio's hourly housekeeping: tmp files untouched past the retention deleted (issue 14).

``clean_studio_tmp_files`` (the op of the ``studio_tmp_cleanup`` job) runs
``studio.slicing.housekeeping.clean_tmp_files`` over every studio at once, on the store the API
uses (``STOREHOUSE_STORAGE_*``, local links signed with the API's key) and the retention of
``STUDIO_SLICING_TMP_RETENTION_HOURS`` (24–48 h). Like ``orders_hourly`` it is an operation on an
API table (``studio_tmp_files``, an external asset), not an asset of its own: it produces no table.
What it removed shows in its output's metadata (totals, and files and bytes per studio) and as an
observation of ``api/studio_tmp_files`` per studio.
"""

import dagster as dg

from assets.api_tables import api_key
from commerce.settings import CommerceSettings
from commerce.tokens import load_secret
from resources.storage import Storage
from resources.storage.settings import StorageSettings, storage_from_settings
from resources.warehouse import WarehouseResource
from studio.slicing.housekeeping import Cleanup, clean_tmp_files
from studio.slicing.settings import SlicerSettings
from warehouse.tables.studio_print import studio_tmp_files


class StudioStorageResource(dg.ConfigurableResource):
    """The studio's file store, the one the API writes uploads to, built when a run asks for it."""

    def storage(self) -> Storage:
        settings = StorageSettings()
        secret = None if settings.backend == "s3" or settings.secret_key else load_secret(CommerceSettings())
        return storage_from_settings(settings, secret=secret)


def cleanup_metadata(report: Cleanup) -> dict[str, object]:
    per_tenant = {t: {"files": r.files, "bytes": r.bytes, "objects": r.objects, "kept_running": r.kept_running,
                      "kept_ordered": r.kept_ordered, "errors": r.errors} for t, r in report.tenants.items()}
    return {"cutoff": report.cutoff.isoformat(), "studios": len(report.tenants), "files_removed": report.files,
            "bytes_removed": report.bytes, "errors": report.errors,
            "per_studio": dg.MetadataValue.json(per_tenant)}


@dg.op(
    out=dg.Out(dg.Nothing), tags={"storehouse/system": "studio"},
    description="Every studio's tmp files (uploads and their G-code) untouched for longer than the retention "
    "(STUDIO_SLICING_TMP_RETENTION_HOURS, 24–48 h) deleted from the store and from studio_tmp_files; a file a "
    "slice runs on, or one turned into an order file, is kept. Its output's metadata counts files and bytes removed.",
)
def clean_studio_tmp_files(context: dg.OpExecutionContext, warehouse: WarehouseResource,
                           studio_storage: StudioStorageResource):
    settings = SlicerSettings()
    report = clean_tmp_files(warehouse.engine, studio_storage.storage(), settings.tmp_retention_hours,
                             log=context.log.warning)
    for tenant, done in report.tenants.items():
        context.log_event(dg.AssetObservation(
            asset_key=api_key(studio_tmp_files), description="tmp files removed by housekeeping",
            metadata={"tenant": tenant, "files_removed": done.files, "bytes_removed": done.bytes,
                      "kept_running": done.kept_running, "kept_ordered": done.kept_ordered}))
    context.log.info(f"removed {report.files} tmp file(s), {report.bytes} bytes, of {len(report.tenants)} studio(s)")
    if report.errors:
        context.log.warning(f"{report.errors} tmp file(s) kept: the store refused; the next run tries again")
    yield dg.Output(None, metadata=cleanup_metadata(report))
