"""SQLite writers of one process queue on a lock instead of sleeping in SQLite's busy handler."""

import concurrent.futures as cf
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from warehouse.db import WouldWait, make_engine, unwaiting_engine, would_wait, write_lock_for

ROWS = sa.Table("rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))


def engine_at(tmp_path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    ROWS.metadata.create_all(engine)
    return engine


def insert_in_thread(engine: sa.Engine, row_id: int) -> threading.Event:
    """Insert one row from another thread; the event is set once it has committed."""
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(ROWS).values(id=row_id, v="x"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done


def test_a_writer_holds_the_process_lock_until_commit_and_the_next_one_queues(tmp_path):
    engine = engine_at(tmp_path)
    lock = write_lock_for(str(tmp_path / "w.db"))
    first = engine.connect()
    first.execute(sa.insert(ROWS).values(id=1, v="x"))
    assert lock.locked()  # taken at the transaction's first write
    second_done = insert_in_thread(engine, 2)
    assert not second_done.wait(0.3)  # queued behind the first, on our lock
    first.commit()
    assert second_done.wait(5)
    first.close()
    assert not lock.locked()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one() == 2


def test_many_concurrent_writers_all_commit(tmp_path):
    engine = engine_at(tmp_path)

    def write(i: int) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(ROWS).values(id=i, v="x"))
            conn.execute(sa.update(ROWS).where(ROWS.c.id == i).values(v="y"))

    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(400)))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(ROWS.c.v == "y")).scalar_one() == 400


def test_a_connection_closed_mid_transaction_frees_the_lock(tmp_path):
    engine = engine_at(tmp_path)
    conn = engine.connect()
    conn.execute(sa.insert(ROWS).values(id=1, v="x"))  # holds the write lock, never committed
    conn.close()  # rolled back on return to the pool
    assert insert_in_thread(engine, 2).wait(5)
    with engine.connect() as c:
        assert c.execute(sa.select(ROWS.c.id)).scalars().all() == [2]


def test_readers_do_not_wait_for_a_writer(tmp_path):
    engine = engine_at(tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.insert(ROWS).values(id=1, v="x"))
    writer = engine.connect()
    writer.execute(sa.update(ROWS).values(v="y"))  # a write transaction left open
    try:
        with engine.connect() as reader:
            assert reader.execute(sa.select(ROWS.c.v)).scalar_one() == "x"  # WAL: the last committed value
    finally:
        writer.rollback()
        writer.close()


def test_the_unwaiting_engine_refuses_at_once_when_this_process_writes(tmp_path):
    engine = engine_at(tmp_path)
    now = unwaiting_engine(engine)
    writer = engine.connect()
    writer.execute(sa.insert(ROWS).values(id=1, v="x"))  # holds this process's write lock
    try:
        started = time.monotonic()
        with pytest.raises(WouldWait) as refused, now.begin() as conn:
            conn.execute(sa.insert(ROWS).values(id=2, v="x"))
        assert time.monotonic() - started < 1 and would_wait(refused.value)
        with now.connect() as conn:  # reading never waits (WAL)
            assert conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one() == 0
    finally:
        writer.commit()
        writer.close()
    with now.begin() as conn:  # the writer gone, the same engine writes at once
        conn.execute(sa.insert(ROWS).values(id=2, v="x"))
    assert not write_lock_for(str(tmp_path / "w.db")).locked()
    with engine.connect() as conn:
        assert conn.execute(sa.select(ROWS.c.id).order_by(ROWS.c.id)).scalars().all() == [1, 2]


def test_the_unwaiting_engine_refuses_at_once_when_another_process_writes(tmp_path):
    engine = engine_at(tmp_path)
    now = unwaiting_engine(engine)
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)  # another process's writer: SQLite's lock only
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as refused, now.begin() as conn:
            conn.execute(sa.insert(ROWS).values(id=1, v="x"))
        assert time.monotonic() - started < 1 and would_wait(refused.value)
        assert not write_lock_for(str(tmp_path / "w.db")).locked()  # given back with the rollback
    finally:
        other.execute("ROLLBACK")
        other.close()
    broken = sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("no such table: rows"))
    assert not would_wait(broken) and not would_wait(ValueError("x"))


def test_only_sqlite_files_get_an_unwaiting_engine(tmp_path):
    assert unwaiting_engine(make_engine("sqlite://")) is None
    assert unwaiting_engine(make_engine("postgresql://nobody@127.0.0.1:1/none")) is None
    assert unwaiting_engine(engine_at(tmp_path)) is not None
