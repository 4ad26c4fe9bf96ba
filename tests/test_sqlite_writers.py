"""SQLite writers of one process queue on a lock instead of sleeping in SQLite's busy handler."""

import concurrent.futures as cf
import threading

import sqlalchemy as sa

from warehouse.db import make_engine, write_lock_for

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
