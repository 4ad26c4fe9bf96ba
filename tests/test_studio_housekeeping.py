"""Housekeeping of the tmp bucket on the real database (SQLite, and PostgreSQL when DATABASE_URL names
one) and the real local store: old files go with their G-code, files in use or ordered stay, bytes
are counted from the store, a second run removes nothing more."""

from __future__ import annotations

import datetime as dt
import uuid

import pydantic
import pytest
import sqlalchemy as sa

from resources.storage import TMP
from resources.storage.local import LocalStorage
from studio.slicing.housekeeping import clean_tmp_files
from studio.slicing.settings import SlicerSettings
from warehouse.tables.core import tenants
from warehouse.tables.studio_print import studio_slice_cache, studio_tmp_files

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", b"k" * 32, "http://127.0.0.1:9210")


@pytest.fixture
def studio(engine, tenant_id) -> str:
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants).values(tenant_id=tenant_id, name="Print studio"))
    return tenant_id


def tmp_file(engine, store, tenant, *, hours_ago: float, model: bytes | None = b"m" * 100,
             gcode: bytes | None = None, status: str = "idle", lease_in_s: float | None = None,
             output: str | None = None, **meta) -> dict:
    key = f"{tenant}/user-1/{uuid.uuid4().hex}/part.stl"
    if model is not None:
        store.put(TMP, key, model, "model/stl")
    if gcode is not None:
        output = key.rsplit("/", 1)[0] + "/part.gcode"
        store.put(TMP, output, gcode, "text/x.gcode")
    at = NOW - dt.timedelta(hours=hours_ago)
    with engine.begin() as conn:
        file_id = conn.execute(sa.insert(studio_tmp_files).values(
            tenant_id=tenant, user_id="user-1", storage_key=key, filename="part.stl", size_bytes=len(model or b""),
            mime_type="model/stl", sha256="0" * 64, status=status, metadata={"output": output, **meta},
            lease_token="w" if lease_in_s is not None else None,
            lease_expires_at=NOW + dt.timedelta(seconds=lease_in_s) if lease_in_s is not None else None,
            created_at=at, updated_at=at).returning(studio_tmp_files.c.id)).scalar_one()
    return {"id": file_id, "key": key, "output": output}


def ids(engine, tenant) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(studio_tmp_files.c.id).where(studio_tmp_files.c.tenant_id == tenant)
                                ).scalars())


def test_old_files_go_with_their_gcode_and_the_rest_stays(engine, store, studio):
    old = tmp_file(engine, store, studio, hours_ago=30, gcode=b"g" * 1000)
    new = tmp_file(engine, store, studio, hours_ago=2, gcode=b"g" * 10)
    running = tmp_file(engine, store, studio, hours_ago=40, status="running", lease_in_s=20)
    stale = tmp_file(engine, store, studio, hours_ago=40, status="running", lease_in_s=-3600)  # its worker died
    ordered = tmp_file(engine, store, studio, hours_ago=50, ordered={"quoteId": 1, "orderFileId": 1})  # as quick order writes
    not_ordered = tmp_file(engine, store, studio, hours_ago=50, ordered=False)  # no order recorded
    gone = tmp_file(engine, store, studio, hours_ago=26, model=None)  # its object went already

    report = clean_tmp_files(engine, store, 24, tenants=[studio], now=NOW)

    mine = report.tenants[studio]
    assert (mine.files, mine.bytes, mine.objects) == (4, 1100 + 100 + 100, 4)
    assert (mine.kept_running, mine.kept_ordered, mine.errors) == (1, 1, 0)
    assert (report.files, report.bytes) == (4, 1300)
    assert ids(engine, studio) == {new["id"], running["id"], ordered["id"]}
    assert not store.exists(TMP, old["key"]) and not store.exists(TMP, old["output"])
    assert store.exists(TMP, new["key"]) and store.exists(TMP, new["output"])
    assert store.exists(TMP, running["key"]) and store.exists(TMP, ordered["key"])
    assert not store.exists(TMP, stale["key"]) and not store.exists(TMP, not_ordered["key"])
    assert gone["id"] not in ids(engine, studio)

    again = clean_tmp_files(engine, store, 24, tenants=[studio], now=NOW)  # idempotent
    assert (again.files, again.bytes) == (0, 0) and again.tenants[studio].kept_running == 1
    assert ids(engine, studio) == {new["id"], running["id"], ordered["id"]}


def test_the_retention_is_the_setting_and_a_kept_files_gcode_stays(engine, store, studio):
    shared = tmp_file(engine, store, studio, hours_ago=30, gcode=b"g" * 500)  # sliced first
    hit = tmp_file(engine, store, studio, hours_ago=1, output=shared["output"], cached=True)  # a cache hit on it
    with engine.begin() as conn:
        conn.execute(sa.insert(studio_slice_cache).values(
            tenant_id=studio, cache_key="c" * 64, model_sha256="0" * 64, settings={}, profile="p", grams=1,
            time_s=60, slicer="prusa-slicer", notes=[], gcode_key=shared["output"]))
    assert clean_tmp_files(engine, store, 36, tenants=[studio], now=NOW).files == 0  # 30 h < 36 h

    report = clean_tmp_files(engine, store, 24, tenants=[studio], now=NOW)
    assert (report.files, report.bytes) == (1, 100)  # the model only
    assert ids(engine, studio) == {hit["id"]}
    assert not store.exists(TMP, shared["key"]) and store.exists(TMP, shared["output"])
    with engine.connect() as conn:
        assert conn.execute(sa.select(studio_slice_cache.c.gcode_key).where(
            studio_slice_cache.c.tenant_id == studio)).scalar_one() == shared["output"]

    later = NOW + dt.timedelta(hours=2)  # the cache hit itself ages out: the G-code goes too, and the cache forgets it
    report = clean_tmp_files(engine, store, 24, tenants=[studio], now=later + dt.timedelta(hours=24))
    assert (report.files, report.bytes) == (1, 500 + 100)
    assert not store.exists(TMP, shared["output"]) and ids(engine, studio) == set()
    with engine.connect() as conn:
        assert conn.execute(sa.select(studio_slice_cache.c.gcode_key).where(
            studio_slice_cache.c.tenant_id == studio)).scalar_one() is None


def test_other_studios_are_reported_apart(engine, store, studio):
    other = f"{studio}-b"
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants).values(tenant_id=other, name="Other studio"))
    tmp_file(engine, store, studio, hours_ago=30)
    tmp_file(engine, store, other, hours_ago=30, model=b"x" * 7)
    tmp_file(engine, store, other, hours_ago=3)
    report = clean_tmp_files(engine, store, 24, tenants=[studio, other], now=NOW)
    assert {t: (r.files, r.bytes) for t, r in report.tenants.items()} == {studio: (1, 100), other: (1, 7)}
    assert len(ids(engine, other)) == 1


def test_the_retention_is_24_to_48_hours(monkeypatch):
    assert SlicerSettings().tmp_retention_hours == 24
    monkeypatch.setenv("STUDIO_SLICING_TMP_RETENTION_HOURS", "48")
    assert SlicerSettings().tmp_retention_hours == 48
    for wrong in ("23", "49"):
        monkeypatch.setenv("STUDIO_SLICING_TMP_RETENTION_HOURS", wrong)
        with pytest.raises(pydantic.ValidationError):
            SlicerSettings()


def test_the_hourly_job_removes_and_reports_per_studio(engine, warehouse, studio, tmp_path, monkeypatch):
    """The job as the schedule runs it: the API's store (STOREHOUSE_STORAGE_*), the retention setting."""
    import dagster as dg

    from pipelines.definitions import build_defs

    root = tmp_path / "api-store"
    monkeypatch.setenv("STOREHOUSE_STORAGE_ROOT", str(root))
    monkeypatch.setenv("STOREHOUSE_STORAGE_SECRET_KEY", "s" * 32)
    monkeypatch.setenv("STUDIO_SLICING_TMP_RETENTION_HOURS", "30")
    api_store = LocalStorage(root, b"s" * 32, "http://127.0.0.1:9210")
    real_now = dt.datetime.now(dt.timezone.utc)
    hours = (real_now - NOW).total_seconds() / 3600  # tmp_file ages from NOW
    old = tmp_file(engine, api_store, studio, hours_ago=31 - hours, gcode=b"g" * 40)
    young = tmp_file(engine, api_store, studio, hours_ago=29 - hours)  # past 24 h, within the 30 h retention

    defs = build_defs()
    assert {s.name: s.cron_schedule for s in defs.schedules}["studio_tmp_cleanup_hourly"] == "40 * * * *"
    job = defs.resolve_job_def("studio_tmp_cleanup")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    resources={"warehouse": warehouse})
    assert result.success
    event = next(e for e in result.all_node_events if e.is_successful_output)
    metadata = {k: v.value for k, v in event.event_specific_data.metadata.items()}
    assert metadata["per_studio"][studio] == {"files": 1, "bytes": 140, "objects": 2, "kept_running": 0,
                                              "kept_ordered": 0, "errors": 0}
    assert metadata["files_removed"] >= 1 and metadata["bytes_removed"] >= 140
    observed = [e.asset_observation_data.asset_observation for e in result.all_events
                if e.event_type_value == "ASSET_OBSERVATION"]
    assert any(o.metadata["tenant"].value == studio and o.metadata["bytes_removed"].value == 140 for o in observed)
    assert ids(engine, studio) == {young["id"]} and not api_store.exists(TMP, old["key"])
