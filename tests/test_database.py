# SPDX-License-Identifier: AGPL-3.0-or-later
"""The embedded Database end to end: DDL, procedures, ad hoc SQL, sysprocs, reopen."""

import datetime as dt
import decimal
import textwrap

import pytest

from voltdb_py import Database, Status, VoltType
from voltdb_py.errors import CatalogError, DatabaseClosedError, DDLError

KV_DDL = """
CREATE TABLE kv (k VARCHAR(64) NOT NULL, v VARBINARY(256), n BIGINT DEFAULT 0,
                 PRIMARY KEY (k));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv (k, v, n) VALUES (?, ?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v, n FROM kv WHERE k = ?;
CREATE PROCEDURE Total AS SELECT COUNT(*), SUM(n) FROM kv;
"""

PROCS = textwrap.dedent('''
    from voltdb_py import SQLStmt, VoltProcedure, VoltAbortException

    class Transfer(VoltProcedure):
        get = SQLStmt("SELECT n FROM kv WHERE k = ?;")
        put = SQLStmt("UPDATE kv SET n = ? WHERE k = ?;")

        def run(self, src: str, dst: str, amount: int):
            self.queue_sql(self.get, src, expect=self.EXPECT_ONE_ROW)
            self.queue_sql(self.get, dst, expect=self.EXPECT_ONE_ROW)
            a, b = self.execute_sql()
            self.queue_sql(self.put, a.scalar() - amount, src)
            self.queue_sql(self.put, b.scalar() + amount, dst)
            self.execute_sql()
            if a.scalar() - amount < 0:
                raise VoltAbortException("insufficient funds")
            return a.scalar() - amount

    class Context(VoltProcedure):
        def run(self, key: str):
            rng = self.get_seeded_random()
            return [__import__("voltdb_py").VoltTable(
                [__import__("voltdb_py").Column("ID", __import__("voltdb_py").VoltType.BIGINT),
                 __import__("voltdb_py").Column("R", __import__("voltdb_py").VoltType.FLOAT),
                 __import__("voltdb_py").Column("P", __import__("voltdb_py").VoltType.INTEGER)],
                [(self.get_unique_id(), rng.random(), self.partition_id)])]

    class Boom(VoltProcedure):
        ins = SQLStmt("INSERT INTO kv (k, n) VALUES (?, 1);")

        def run(self, key: str):
            self.queue_sql(self.ins, key)
            self.execute_sql()
            raise RuntimeError("bug in user code")
''')


@pytest.fixture
def db(tmp_path):
    d = Database.open(tmp_path / "db", sites_per_host=4)
    d.execute_ddl(KV_DDL)
    yield d
    d.close()


def ok(resp):
    assert resp.status == Status.SUCCESS, resp.status_string
    return resp


def test_put_get_roundtrip(db):
    ok(db.call("Put", "alice", b"\x01\x02", 5))
    resp = ok(db.call("Get", "alice"))
    assert resp.tables[0].rows == [(b"\x01\x02", 5)]
    assert [c.type for c in resp.tables[0].columns] == [VoltType.VARBINARY, VoltType.BIGINT]
    assert ok(db.call("Get", "nobody")).tables[0].rows == []


def test_rows_spread_over_partitions_and_totals_merge(db):
    for i in range(200):
        ok(db.call("Put", f"key{i}", None, i))
    resp = ok(db.call("Total"))
    assert resp.tables[0].rows == [(200, sum(range(200)))]
    stats = ok(db.call("@Statistics", "TABLE", 0)).tables[0]
    counts = {r[stats.column_index("PARTITION_ID")]: r[stats.column_index("TUPLE_COUNT")]
              for r in stats.rows if r[stats.column_index("TABLE_NAME")] == "KV"}
    assert sum(counts.values()) == 200
    assert len(counts) == 4 and all(c > 0 for c in counts.values())
    # each row sits in the partition the hashinator names
    for i in range(0, 200, 17):
        pid = db.partition_for("KV", f"key{i}")
        assert 0 <= pid < 4


def test_adhoc_and_params(db):
    ok(db.call("Put", "a", None, 1))
    ok(db.call("Put", "b", None, 2))
    resp = ok(db.adhoc("SELECT k, n FROM kv WHERE n >= ? ORDER BY k", 1))
    assert resp.tables[0].rows == [("a", 1), ("b", 2)]
    resp = ok(db.adhoc("DELETE FROM kv WHERE k = ?", "a"))
    assert resp.tables[0].rows == [(1,)]
    bad = db.adhoc("SELECT nope FROM kv")
    assert bad.status == Status.GRACEFUL_FAILURE and "NOPE" in bad.status_string.upper()


def test_wrong_parameters_are_graceful_failures(db):
    resp = db.call("Put", "a", None)
    assert resp.status == Status.GRACEFUL_FAILURE
    resp = db.call("Put", "a", None, "not a number")
    assert resp.status == Status.GRACEFUL_FAILURE
    resp = db.call("Put", "x" * 65, None, 1)
    assert resp.status == Status.GRACEFUL_FAILURE
    assert "VARCHAR" in resp.status_string.upper()
    assert db.call("NoSuchProc").status == Status.UNEXPECTED_FAILURE


def test_class_procedure_abort_rolls_back(db, tmp_path):
    mod = tmp_path / "bank.py"
    mod.write_text(PROCS)
    db.load_classes(mod)
    db.execute_ddl("CREATE PROCEDURE FROM CLASS bank.Transfer;"
                   "CREATE PROCEDURE PARTITION ON TABLE kv COLUMN k FROM CLASS bank.Context;"
                   "CREATE PROCEDURE PARTITION ON TABLE kv COLUMN k FROM CLASS bank.Boom;")
    ok(db.call("Put", "src", None, 10))
    ok(db.call("Put", "dst", None, 0))
    assert ok(db.call("Transfer", "src", "dst", 4)).tables[0].rows == [(6,)]
    resp = db.call("Transfer", "src", "dst", 100)
    assert resp.status == Status.USER_ABORT
    assert "insufficient funds" in resp.status_string
    assert ok(db.call("Get", "src")).tables[0].rows[0][1] == 6
    assert ok(db.call("Get", "dst")).tables[0].rows[0][1] == 4
    # a failed expectation aborts the call, as VoltDB's VoltAbortException does
    resp = db.call("Transfer", "missing", "dst", 1)
    assert resp.status == Status.USER_ABORT
    assert "Expected one row" in resp.status_string
    # an unexpected exception rolls back the insert it made
    resp = db.call("Boom", "zzz")
    assert resp.status == Status.UNEXPECTED_FAILURE
    assert ok(db.call("Get", "zzz")).tables[0].rows == []


def test_deterministic_context(db, tmp_path):
    mod = tmp_path / "bank.py"
    mod.write_text(PROCS)
    db.load_classes(mod)
    db.execute_ddl("CREATE PROCEDURE PARTITION ON TABLE kv COLUMN k FROM CLASS bank.Context;")
    r1 = ok(db.call("Context", "a")).tables[0].rows[0]
    r2 = ok(db.call("Context", "a")).tables[0].rows[0]
    assert r1[0] != r2[0]
    import random
    assert r1[1] == random.Random(r1[0]).random()
    assert r1[2] == db.partition_for("KV", "a")
    assert r1[0] & 0x3FFF == r1[2]


def test_reopen_restores_catalog_classes_and_data(tmp_path):
    path = tmp_path / "db"
    mod = tmp_path / "bank.py"
    mod.write_text(PROCS)
    with Database.open(path, sites_per_host=3) as d:
        d.execute_ddl(KV_DDL)
        d.load_classes(mod)
        d.execute_ddl("CREATE PROCEDURE FROM CLASS bank.Transfer;")
        for i in range(50):
            ok(d.call("Put", f"k{i}", None, i))
    mod.unlink()  # the database keeps its own copy of the classes
    with Database.open(path) as d:
        assert d.partition_count == 3
        assert ok(d.call("Total")).tables[0].rows == [(50, sum(range(50)))]
        assert ok(d.call("Transfer", "k10", "k11", 3)).tables[0].rows == [(7,)]
    with pytest.raises(ValueError):
        Database.open(path, sites_per_host=5)


def test_bad_ddl_changes_nothing(db):
    before = db.catalog
    with pytest.raises(DDLError):
        db.execute_ddl("CREATE TABLE ok1 (a INTEGER); CREATE TABLE broken (a NOSUCHTYPE);")
    assert db.catalog is before
    assert "OK1" not in db.catalog.tables
    with pytest.raises(CatalogError):
        db.execute_ddl("CREATE PROCEDURE FROM CLASS nomodule.Nothing;")


def test_closed_database_raises(tmp_path):
    d = Database.open(tmp_path / "db")
    d.close()
    d.close()
    with pytest.raises(DatabaseClosedError):
        d.call("@Ping")


def test_system_catalog_and_partition_keys(db):
    tables = ok(db.call("@SystemCatalog", "TABLES")).tables[0]
    assert [r[2] for r in tables.rows] == ["KV"]
    cols = ok(db.call("@SystemCatalog", "COLUMNS")).tables[0]
    names = [(r[cols.column_index("COLUMN_NAME")], r[cols.column_index("TYPE_NAME")],
              r[cols.column_index("REMARKS")]) for r in cols.rows]
    assert names == [("K", "VARCHAR", "PARTITION_COLUMN"), ("V", "VARBINARY", None),
                     ("N", "BIGINT", None)]
    pk = ok(db.call("@SystemCatalog", "PRIMARYKEYS")).tables[0]
    assert [(r[2], r[3]) for r in pk.rows] == [("KV", "K")]
    procs = ok(db.call("@SystemCatalog", "PROCEDURES")).tables[0]
    import json
    remarks = {r[2]: json.loads(r[6]) for r in procs.rows}
    assert remarks["Get"] == {"readOnly": True, "singlePartition": True,
                              "partitionParameter": 0, "partitionParameterType": 9,
                              "compound": False}
    assert remarks["Total"]["singlePartition"] is False
    keys = ok(db.call("@GetPartitionKeys", "INTEGER")).tables[0].rows
    assert [p for p, _ in keys] == [0, 1, 2, 3]
    for pid, key in keys:
        assert db.hashinator.partition_for_value(int(VoltType.BIGINT), key) == pid
    assert db.call("@GetPartitionKeys", "FLOAT").status == Status.GRACEFUL_FAILURE
    assert ok(db.call("@Statistics", "PARTITIONCOUNT")).tables[0].rows[0][3] == 4
    plan = ok(db.call("@Explain", "SELECT v FROM kv WHERE k = ?")).tables[0].rows[0][0]
    assert isinstance(plan, str) and plan


def test_types_roundtrip_through_sql(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as d:
        d.execute_ddl("""
            CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, ti TINYINT, si SMALLINT,
                            f FLOAT, dec DECIMAL, ts TIMESTAMP, s VARCHAR(10 BYTES),
                            b VARBINARY(4));
            PARTITION TABLE t ON COLUMN id;
        """)
        when = dt.datetime(2024, 2, 29, 12, 30, 1, 123456)
        ok(d.adhoc("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", 1, 7, -300, 1.5,
                   decimal.Decimal("12.5"), when, "héllo", b"\x00\xff"))
        ok(d.adhoc("INSERT INTO t (id) VALUES (?)", 2))
        rows = ok(d.adhoc("SELECT * FROM t ORDER BY id")).tables[0].rows
        assert rows[0] == (1, 7, -300, 1.5, decimal.Decimal("12.500000000000"), when, "héllo",
                           b"\x00\xff")
        assert rows[1] == (2, None, None, None, None, None, None, None)
        # 'héllo' is 6 UTF-8 bytes; 11 bytes do not fit VARCHAR(10 BYTES)
        assert d.adhoc("INSERT INTO t (id, s) VALUES (3, 'ééééééé')").status == \
            Status.GRACEFUL_FAILURE
        assert d.adhoc("INSERT INTO t (id, ti) VALUES (4, 200)").status == \
            Status.GRACEFUL_FAILURE
        assert d.adhoc("INSERT INTO t (id) VALUES (1)").status == Status.GRACEFUL_FAILURE
        assert len(ok(d.adhoc("SELECT id FROM t")).tables[0].rows) == 2


def test_procedure_return_values_become_tables(tmp_path):
    mod = tmp_path / "rets.py"
    mod.write_text(textwrap.dedent('''
        from voltdb_py import Column, VoltProcedure, VoltTable, VoltType

        class Ret(VoltProcedure):
            def run(self, kind: str):
                t = VoltTable([Column("A", VoltType.BIGINT)], [(1,), (2,)])
                return {"int": 7, "float": 1.5, "str": "s", "bytes": b"b", "none": None,
                        "table": t, "tables": [t, t], "bool": True,
                        "bad": object()}[kind]
    '''))
    with Database.open(tmp_path / "db", sites_per_host=2) as d:
        d.load_classes(mod)
        d.execute_ddl("CREATE PROCEDURE FROM CLASS rets.Ret;")
        for kind, vtype, value in (("int", VoltType.BIGINT, 7), ("float", VoltType.FLOAT, 1.5),
                                   ("str", VoltType.STRING, "s"),
                                   ("bytes", VoltType.VARBINARY, b"b")):
            t = ok(d.call("Ret", kind)).tables
            assert [[c.type for c in x.columns] for x in t] == [[vtype]]
            assert t[0].rows == [(value,)] and t[0].scalar() == value
        assert ok(d.call("Ret", "none")).tables == []
        assert ok(d.call("Ret", "table")).tables[0].rows == [(1,), (2,)]
        assert len(ok(d.call("Ret", "tables")).tables) == 2
        for kind in ("bool", "bad"):
            assert d.call("Ret", kind).status == Status.GRACEFUL_FAILURE


def test_call_partition_runs_each_leg_in_its_partition(db):
    keys = ok(db.call("@GetPartitionKeys", "STRING")).tables[0].rows
    for pid, key in keys:
        ok(db.call_partition(pid, "Put", key, None, pid))
    for pid, key in keys:
        assert ok(db.call_partition(pid, "Get", key)).tables[0].rows == [(None, pid)]
        assert db.partition_for("KV", key) == pid
    assert db.call_partition(0, "Total").status == Status.GRACEFUL_FAILURE
    assert db.call_partition(99, "Get", "x").status == Status.GRACEFUL_FAILURE
    assert db.call_partition(0, "Nope").status == Status.UNEXPECTED_FAILURE


def test_whole_table_aggregates_use_the_engine_and_match_sqlite(tmp_path):
    import sqlite3

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from voltdb_py.sql import plan_statement

    sql = ("SELECT COUNT(*), COUNT(a), SUM(a), MIN(a), MAX(a), SUM(f), MIN(s), MAX(s) "
           "FROM t")
    with Database.open(tmp_path / "db", sites_per_host=3) as d:
        d.execute_ddl("CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, a BIGINT, f FLOAT, "
                      "s VARCHAR(5)); PARTITION TABLE t ON COLUMN id;"
                      "CREATE TABLE r (id INTEGER NOT NULL PRIMARY KEY, a BIGINT, f FLOAT, "
                      "s VARCHAR(5));")
        assert plan_statement(d.catalog, sql)._whole_aggs is not None
        assert plan_statement(d.catalog, sql + " WHERE a > 0")._whole_aggs is None

        rows_st = st.lists(st.tuples(
            st.one_of(st.none(), st.integers(-10**12, 10**12)),
            st.one_of(st.none(), st.integers(-1000, 1000).map(lambda x: x / 4)),
            st.one_of(st.none(), st.text("abcé", max_size=5))), max_size=40)

        @settings(max_examples=25, deadline=None)
        @given(rows_st)
        def check(rows):
            lite = sqlite3.connect(":memory:")
            lite.execute("CREATE TABLE t (id INTEGER, a INTEGER, f REAL, s TEXT)")
            for table in ("T", "R"):
                ok(d.adhoc(f"TRUNCATE TABLE {table}"))
                for i, (a, f, s) in enumerate(rows):
                    ok(d.adhoc(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", i, a, f, s))
            for i, (a, f, s) in enumerate(rows):
                lite.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (i, a, f, s))
            want = lite.execute(sql).fetchone()
            lite.close()
            for table in ("t", "r"):
                got = ok(d.adhoc(sql.replace("FROM t", f"FROM {table}"))).tables[0].rows[0]
                assert got[:5] == want[:5] and got[6:] == want[6:]
                assert (got[5] is None) == (want[5] is None)
                if got[5] is not None:
                    assert abs(got[5] - want[5]) < 1e-9

        check()


def test_hex_literals_are_varbinary(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as d:
        d.execute_ddl("CREATE TABLE s (id INTEGER NOT NULL PRIMARY KEY, b VARBINARY(4));"
                      "PARTITION TABLE s ON COLUMN id;")
        ok(d.adhoc("INSERT INTO s VALUES (1, X'00fF')"))
        ok(d.adhoc("INSERT INTO s VALUES (2, x'')"))
        assert ok(d.adhoc("SELECT id FROM s WHERE b = X'00FF'")).tables[0].rows == [(1,)]
        assert ok(d.adhoc("SELECT b FROM s WHERE id = 2")).tables[0].rows == [(b"",)]
        assert ok(d.adhoc("SELECT 'X''00''' FROM s WHERE id = 1")).tables[0].rows == [("X'00'",)]
        for bad in ("SELECT X'0' FROM s", "SELECT X'zz' FROM s"):
            r = d.adhoc(bad)
            assert r.status == Status.GRACEFUL_FAILURE and "hex" in r.status_string
        assert d.adhoc("INSERT INTO s VALUES (3, X'0011223344')").status == \
            Status.GRACEFUL_FAILURE


def test_adhoc_takes_ddl_like_voltdb(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as d:
        ok(d.adhoc("-- a comment\nCREATE TABLE t (a INTEGER NOT NULL PRIMARY KEY);"
                   "PARTITION TABLE t ON COLUMN a;"))
        assert d.catalog.tables["T"].partitioned
        ok(d.adhoc("INSERT INTO t VALUES (1)"))
        bad = d.adhoc("CREATE TABLE t (a INTEGER)")
        assert bad.status == Status.GRACEFUL_FAILURE and "T" in bad.status_string
        assert d.adhoc("DROP TABLE t", 1).status == Status.GRACEFUL_FAILURE
        ok(d.call("@AdHoc", "DROP TABLE t"))
        assert "T" not in d.catalog.tables


_INT_ROUTE_DDL = "".join(
    f"CREATE TABLE t_{t} (k {t} NOT NULL PRIMARY KEY, v INTEGER);\n"
    f"PARTITION TABLE t_{t} ON COLUMN k;\n"
    f"CREATE PROCEDURE Get_{t} PARTITION ON TABLE t_{t} COLUMN k AS "
    f"SELECT v FROM t_{t} WHERE k = ?;\n"
    for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT"))


def test_route_of_integer_keys_matches_the_coerced_value(tmp_path):
    """route() takes a short way for an int key of an integer partition column: the same
    partition as the coerced value's, None when the value is out of the column's range
    (the call then runs where it lands and answers with the error)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from voltdb_py.errors import VoltError
    from voltdb_py.types import coerce

    d = Database.open(tmp_path / "db", sites_per_host=5)
    try:
        d.execute_ddl(_INT_ROUTE_DDL)
        types = {"TINYINT": VoltType.TINYINT, "SMALLINT": VoltType.SMALLINT,
                 "INTEGER": VoltType.INTEGER, "BIGINT": VoltType.BIGINT}
        edges = [0, 1, -1, 127, -127, -128, 128, -129, 32767, -32768, 32768, 2**31 - 1,
                 -2**31, 2**31, 2**63 - 1, -2**63, 2**63, -2**63 - 1]

        @settings(max_examples=300, deadline=None)
        @given(st.sampled_from(sorted(types)),
               st.one_of(st.sampled_from(edges), st.integers(-2**70, 2**70)))
        def check(tname, value):
            vtype = types[tname]
            try:
                want = d._hashinator.partition_for_value(int(vtype), coerce(vtype, value))
            except VoltError:
                want = None
            assert d.route(f"Get_{tname}", (value,)) == (want, True)
            assert d.route(f"Get_{tname}", (str(value),))[0] in (None, want)

        check()
        assert d.route("Get_BIGINT", ()) == (None, True)
        assert d.route("Nope", (1,)) == (None, True)
    finally:
        d.close()
