# SPDX-License-Identifier: AGPL-3.0-or-later
"""Token-range streaming through the Database (views maintained) and DDL on live data."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voltdb_py import ConstraintError, Database, Status
from voltdb_py.errors import CodecError

DDL = """
CREATE TABLE acct (id BIGINT NOT NULL, region VARCHAR(4) NOT NULL, bal INTEGER,
                   PRIMARY KEY (id));
PARTITION TABLE acct ON COLUMN id;
CREATE INDEX acct_region ON acct (region, bal);
CREATE TABLE events (id BIGINT NOT NULL, kind VARCHAR(8), amount FLOAT);
PARTITION TABLE events ON COLUMN id;
CREATE TABLE regions (code VARCHAR(4) NOT NULL PRIMARY KEY, name VARCHAR(20));
CREATE VIEW by_region (region, n, total, lo, hi)
    AS SELECT region, COUNT(*), SUM(bal), MIN(bal), MAX(bal) FROM acct GROUP BY region;
CREATE VIEW events_by_id (id, n) AS SELECT id, COUNT(*) FROM events GROUP BY id;
"""
VIEW_CHECK = ("SELECT region, COUNT(*), SUM(bal), MIN(bal), MAX(bal) FROM acct "
              "GROUP BY region ORDER BY region")


def ok(resp):
    assert resp.status == Status.SUCCESS, resp.status_string
    return resp.tables[0].rows


def fill(db, n):
    for i in range(n):
        ok(db.adhoc("INSERT INTO acct VALUES (?, ?, ?)", i, "R%d" % (i % 3),
                    None if i % 7 == 0 else i * 10))
        ok(db.adhoc("INSERT INTO events VALUES (?, ?, ?)", i % 11, "k", float(i)))


def rows_in(db, pid, table):
    return sorted(ok(db.adhoc(f"SELECT * FROM {table}")), key=repr) if pid is None else None


def partition_rows(db, pid, sql):
    """Rows of sql restricted to partition pid (computed with the partition function)."""
    return sorted(r for r in ok(db.adhoc(sql)) if db.partition_for("ACCT", r[0]) == pid)


def view_matches(db):
    got = ok(db.adhoc("SELECT region, n, total, lo, hi FROM by_region ORDER BY region"))
    assert got == ok(db.adhoc(VIEW_CHECK))
    got = ok(db.adhoc("SELECT id, n FROM events_by_id ORDER BY id"))
    assert got == ok(db.adhoc("SELECT id, COUNT(*) FROM events GROUP BY id ORDER BY id"))


@pytest.fixture
def pair(tmp_path):
    a = Database.open(tmp_path / "a", sites_per_host=3)
    b = Database.open(tmp_path / "b", sites_per_host=3)
    for db in (a, b):
        db.execute_ddl(DDL)
    fill(a, 120)
    yield a, b
    a.close()
    b.close()


def stream(src, dst, pid, lo, hi, chunk_bytes):
    resume, chunks, moved = None, 0, 0
    while True:
        chunk, resume = src.export_range(pid, lo, hi, chunk_bytes=chunk_bytes, resume=resume)
        moved += dst.import_chunk(pid, chunk)
        chunks += 1
        if resume is None:
            return moved, chunks


def test_move_a_whole_partition_keeps_rows_indexes_and_views(pair):
    a, b = pair
    pid = 1
    moved, chunks = stream(a, b, pid, -2**31, 2**31 - 1, 300)
    expect = partition_rows(a, pid, "SELECT * FROM acct")
    assert chunks > 1
    assert sorted(ok(b.adhoc("SELECT * FROM acct"))) == expect
    ev = sorted(r for r in ok(a.adhoc("SELECT * FROM events"))
                if a.partition_for("EVENTS", r[0]) == pid)
    assert sorted(ok(b.adhoc("SELECT * FROM events"))) == ev
    assert moved == len(expect) + len(ev)
    view_matches(b)
    # the index works on the imported rows
    region_rows = ok(b.adhoc("SELECT id FROM acct WHERE region = 'R1' AND bal >= 0 ORDER BY id"))
    assert region_rows == [(r[0],) for r in expect if r[1] == "R1" and r[2] is not None]
    # importing the same rows again is refused whole
    chunk, _ = a.export_range(pid, -2**31, 2**31 - 1)
    with pytest.raises(ConstraintError):
        b.import_chunk(pid, chunk)
    assert sorted(ok(b.adhoc("SELECT * FROM acct"))) == expect
    # then the source deletes the range: its views follow
    deleted = a.delete_range(pid, -2**31, 2**31 - 1)
    assert deleted == moved
    assert partition_rows(a, pid, "SELECT * FROM acct") == []
    view_matches(a)


def test_garbage_chunks_write_nothing(pair):
    a, b = pair
    chunk, _ = a.export_range(0, -2**31, 2**31 - 1)
    for bad in (b"", b"\x00", chunk[:-3], chunk[:10] + b"\xff" + chunk[11:]):
        with pytest.raises(CodecError):
            b.import_chunk(0, bad)
    assert ok(b.adhoc("SELECT COUNT(*) FROM acct")) == [(0,)]
    with pytest.raises(ValueError):
        b.import_chunk(7, chunk)


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(-2**31, 2**31 - 2), chunk=st.integers(1, 5000))
def test_split_ranges_stream_each_row_once(tmp_path_factory, cut, chunk):
    root = tmp_path_factory.mktemp("split")
    with Database.open(root / "a", sites_per_host=2) as a, \
            Database.open(root / "b", sites_per_host=2) as b:
        a.execute_ddl(DDL)
        b.execute_ddl(DDL)
        fill(a, 40)
        for pid in (0, 1):
            stream(a, b, pid, -2**31, cut, chunk)
            stream(a, b, pid, cut + 1, 2**31 - 1, chunk)
        assert sorted(ok(b.adhoc("SELECT * FROM acct"))) == \
            sorted(ok(a.adhoc("SELECT * FROM acct")))
        assert sorted(ok(b.adhoc("SELECT * FROM events"))) == \
            sorted(ok(a.adhoc("SELECT * FROM events")))
        view_matches(b)


def test_snapshot_is_consistent_while_writes_go_on(pair):
    a, b = pair
    before = partition_rows(a, 2, "SELECT * FROM acct")
    chunks = a.snapshot_partition(2, chunk_bytes=200)
    for i in range(1000, 1100):
        ok(a.adhoc("INSERT INTO acct VALUES (?, 'R9', 1)", i))
    for c in chunks:
        b.import_chunk(2, c)
    assert sorted(ok(b.adhoc("SELECT * FROM acct"))) == before


def test_ddl_on_populated_tables(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=3) as db:
        db.execute_ddl(DDL)
        fill(db, 60)
        before = sorted(ok(db.adhoc("SELECT id, region, bal FROM acct")))
        # a new view over existing rows is filled at once
        db.execute_ddl("CREATE VIEW by_region2 (region, n) AS "
                       "SELECT region, COUNT(*) FROM acct GROUP BY region;")
        assert ok(db.adhoc("SELECT region, n FROM by_region2 ORDER BY region")) == \
            ok(db.adhoc("SELECT region, COUNT(*) FROM acct GROUP BY region ORDER BY region"))
        # ADD COLUMN with a default: old rows get it, views still right
        db.execute_ddl("ALTER TABLE acct ADD COLUMN flag TINYINT DEFAULT 3;")
        assert sorted(ok(db.adhoc("SELECT id, region, bal, flag FROM acct"))) == \
            [r + (3,) for r in before]
        view_matches(db)
        # DROP COLUMN keeps the rest
        db.execute_ddl("ALTER TABLE acct DROP COLUMN flag;")
        assert sorted(ok(db.adhoc("SELECT * FROM acct"))) == before
        # a unique index that the data violates is refused and nothing changes
        with pytest.raises(ConstraintError):
            db.execute_ddl("CREATE ASSUMEUNIQUE INDEX bad_u ON acct (region);")
        assert all(i.name != "BAD_U" for i in db.catalog.tables["ACCT"].indexes)
        assert sorted(ok(db.adhoc("SELECT * FROM acct"))) == before
        # a new index over existing rows is used and correct
        db.execute_ddl("CREATE INDEX acct_bal ON acct (bal);")
        assert ok(db.adhoc("SELECT id FROM acct WHERE bal = 200")) == [(20,)]
        # DROP TABLE removes the rows: a new table of the same name starts empty
        db.execute_ddl("DROP VIEW events_by_id; DROP TABLE events;"
                       "CREATE TABLE events (id BIGINT NOT NULL, kind VARCHAR(8));"
                       "PARTITION TABLE events ON COLUMN id;")
        assert ok(db.adhoc("SELECT COUNT(*) FROM events")) == [(0,)]
        counts = db.call("@Statistics", "TABLE", 0).tables[0]
        assert sum(r[7] for r in counts.rows if r[5] == "EVENTS") == 0
