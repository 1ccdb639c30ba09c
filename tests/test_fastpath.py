# SPDX-License-Identifier: AGPL-3.0-or-later
"""The compiled point-procedure path answers exactly as the general SQL path does."""

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voltdb_py import Database, Status
from voltdb_py.engine import _engine

DDL = """
CREATE TABLE kv (k BIGINT NOT NULL, sub SMALLINT NOT NULL, v VARCHAR(8), n INTEGER DEFAULT 7,
                 PRIMARY KEY (k, sub));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE s (name VARCHAR(6) NOT NULL PRIMARY KEY, b VARBINARY(3), f FLOAT);
PARTITION TABLE s ON COLUMN name;
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k PARAMETER 1 AS
    SELECT v, n, k AS kk FROM kv WHERE sub = ? AND k = ?;
CREATE PROCEDURE GetAll PARTITION ON TABLE kv COLUMN k PARAMETER 1 AS
    SELECT * FROM kv WHERE sub = ? AND k = ?;
CREATE PROCEDURE Ins PARTITION ON TABLE kv COLUMN k AS INSERT INTO kv (k, sub, v) VALUES (?, ?, ?);
CREATE PROCEDURE Ups PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?, ?, ?);
CREATE PROCEDURE Del PARTITION ON TABLE kv COLUMN k AS DELETE FROM kv WHERE k = ? AND sub = ?;
CREATE PROCEDURE SPut PARTITION ON TABLE s COLUMN name AS UPSERT INTO s VALUES (?, ?, ?);
CREATE PROCEDURE SGet PARTITION ON TABLE s COLUMN name AS SELECT b, f FROM s WHERE name = ?;
CREATE PROCEDURE SIns PARTITION ON TABLE s COLUMN name AS INSERT INTO s VALUES (?, x'00', -1.5);
"""

FAST = {"Get", "GetAll", "Ins", "Ups", "Del", "SPut", "SGet", "SIns"}

keys = st.one_of(st.integers(-3, 3), st.sampled_from([2**63 - 1, None, "5", 1.0, 2.5, "x"]))
subs = st.one_of(st.integers(-2, 2), st.sampled_from([32767, 40000, None, "1"]))
strs = st.one_of(st.text(max_size=9), st.none(), st.integers(0, 99))
names = st.one_of(st.sampled_from(["a", "bb", "ccc", "é", "toolong"]), st.none())
calls = st.one_of(
    st.tuples(st.just("Get"), subs, keys),
    st.tuples(st.just("GetAll"), subs, keys),
    st.tuples(st.just("Ins"), keys, subs, strs),
    st.tuples(st.just("Ups"), keys, subs, strs, st.one_of(st.integers(-5, 5), st.none())),
    st.tuples(st.just("Del"), keys, subs),
    st.tuples(st.just("SPut"), names, st.one_of(st.binary(max_size=4), st.none()),
              st.one_of(st.floats(allow_nan=False), st.none(), st.just(-1.7e308))),
    st.tuples(st.just("SGet"), names),
    st.tuples(st.just("SIns"), names),
    st.tuples(st.just("Get"), subs),  # wrong parameter count
)


def _open(fast: bool) -> Database:
    db = Database.open(tempfile.mkdtemp(), sites_per_host=3)
    db._fast_path_enabled = fast
    db.execute_ddl(DDL)
    return db


def test_point_procedures_take_the_fast_path():
    with _open(True) as db:
        assert {name for name, rt in db._procs.items() if rt.fast is not None} == FAST
        assert all(isinstance(db._procs[n].fast, _engine.PointProcedure) for n in FAST)
    with _open(False) as db:
        assert all(rt.fast is None for rt in db._procs.values())


def test_ineligible_statements_stay_on_the_general_path(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as db:
        db.execute_ddl(DDL + """
            CREATE VIEW cnt (k, c) AS SELECT k, COUNT(*) FROM kv GROUP BY k;
            CREATE PROCEDURE Range PARTITION ON TABLE s COLUMN name AS
                SELECT b FROM s WHERE name = ? AND f > 1;
            CREATE PROCEDURE Multi AS SELECT b FROM s WHERE name = ?;
        """)
        # kv now has a view: its writes must maintain it, so no fast path on kv at all
        assert db._procs["Ins"].fast is None and db._procs["Ups"].fast is None
        assert db._procs["Range"].fast is None and db._procs["Multi"].fast is None
        assert db._procs["SPut"].fast is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(calls, max_size=40))
def test_fast_path_matches_general_path(ops):
    fast, slow = _open(True), _open(False)
    try:
        for op in ops:
            a, b = fast.call(*op), slow.call(*op)
            assert a.status == b.status, (op, a.status_string, b.status_string)
            if a.status == Status.SUCCESS:
                assert [t.rows for t in a.tables] == [t.rows for t in b.tables], op
                assert [[(c.name.upper(), c.type) for c in t.columns] for t in a.tables] == \
                    [[(c.name.upper(), c.type) for c in t.columns] for t in b.tables], op
        for sql in ("SELECT * FROM kv ORDER BY k, sub", "SELECT * FROM s ORDER BY name",
                    "SELECT COUNT(*) FROM kv", "SELECT COUNT(*) FROM s"):
            assert fast.adhoc(sql).tables[0].rows == slow.adhoc(sql).tables[0].rows
    finally:
        fast.close()
        slow.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(calls, max_size=40), st.integers(1, 8))
def test_call_many_matches_calls_one_by_one(ops, batch):
    grouped, single = _open(True), _open(False)
    try:
        got = []
        for i in range(0, len(ops), batch):
            chunk = ops[i:i + batch]
            # mix in a general-path call, which commits on its own inside the batch
            got.extend(grouped.call_many([(op[0], op[1:]) for op in chunk] +
                                         [("@Ping", ())]))
            got.pop()
        want = [single.call(*op) for op in ops]
        for op, a, b in zip(ops, got, want, strict=True):
            assert a.status == b.status, (op, a.status_string, b.status_string)
            if a.status == Status.SUCCESS:
                assert [t.rows for t in a.tables] == [t.rows for t in b.tables], op
        for sql in ("SELECT * FROM kv ORDER BY k, sub", "SELECT * FROM s ORDER BY name",
                    "SELECT COUNT(*) FROM kv", "SELECT COUNT(*) FROM s"):
            assert grouped.adhoc(sql).tables[0].rows == single.adhoc(sql).tables[0].rows
    finally:
        grouped.close()
        single.close()


def test_call_many_survives_reopen(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as db:
        db.execute_ddl(DDL)
        out = db.call_many([("SPut", (f"n{i}", None, float(i))) for i in range(5)] +
                           [("SIns", ("n1",)), ("SGet", ("n3",))])
        assert [r.status for r in out] == [1, 1, 1, 1, 1, -2, 1]
        assert out[-1].tables[0].rows == [(None, 3.0)]
    with Database.open(tmp_path / "db") as db:
        assert db.adhoc("SELECT COUNT(*) FROM s").tables[0].rows == [(5,)]


def test_point_procedure_rejects_out_of_range_indexes():
    schema = _engine.TupleSchema(1, [(_engine.T_BIGINT, 0, False, False)], [0], 0, True,
                                 [(2, [0], True)])
    ring = _engine.Hashinator(b"\x00\x00\x00\x01\x80\x00\x00\x00\x00\x00\x00\x00")
    spec = ((_engine.T_BIGINT, 0, False),)

    def make(key_params=(0,), row_sources=(), row_defaults=(), projection=(0,)):
        return _engine.PointProcedure(_engine.FP_GET, schema, [None], ring, _engine.T_BIGINT,
                                      0, spec, key_params, row_sources, row_defaults,
                                      projection, None, ValueError)

    make()
    for bad in ({"key_params": (1,)}, {"row_sources": (0, 1), "row_defaults": (None, None)},
                {"row_sources": (0,)}, {"projection": (1,)}):
        with pytest.raises(ValueError):
            make(**bad)


_RUN_MANY_DDL = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20), n INTEGER);
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS INSERT INTO kv VALUES (?, ?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v, n FROM kv WHERE k = ?;
CREATE PROCEDURE Cnt AS SELECT COUNT(*) FROM kv;
"""


def test_run_many_results_encode_as_call_many_responses(tmp_path):
    """run_many gives a compiled point call's success as (columns, rows); encoded, it is
    byte for byte the frame of call_many's ClientResponse for the same call."""
    from voltdb_py import Database, wire

    calls = [("Put", [i, f"v{i}", i * 2]) for i in range(20)]
    calls += [("Put", [3, "dup", 0]), ("Get", [3]), ("Get", [99]), ("Cnt", []),
              ("Put", ["x", "bad", 1]), ("Get", [7])]
    out = []
    for name, method in (("a", "run_many"), ("b", "call_many")):
        with Database.open(tmp_path / name, sites_per_host=3) as db:
            db.execute_ddl(_RUN_MANY_DDL)
            out.append(getattr(db, method)(calls))
    items, resps = out
    assert sum(type(r) is tuple for r in items) == 23   # 20 puts, 3 gets
    assert [r.status for r in resps if r.status != 1] == [-2, -2]  # duplicate, bad key
    handles = list(range(len(calls)))
    assert wire.encode_response_list(handles, items) == wire.encode_response_list(handles, resps)
    assert wire.encode_responses(handles, items, 3) == wire.encode_responses(handles, resps, 3)


def test_run_many_grows_a_full_map_and_runs_the_group_again(tmp_path):
    """A group that fills the LMDB map is rolled back, the map doubles and the group runs
    again: every call answered once, as on a roomy map, and nothing written twice."""
    from voltdb_py import Database

    ddl = """
        CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(2000));
        PARTITION TABLE kv ON COLUMN k;
        CREATE PROCEDURE Ins PARTITION ON TABLE kv COLUMN k AS INSERT INTO kv VALUES (?, ?);
        CREATE PROCEDURE Cnt AS SELECT COUNT(*) FROM kv;
    """
    batches = []
    for b in range(12):
        batch = [("Ins", [b * 100 + i, "x" * 1500]) for i in range(100)]
        batch[50:50] = [("Ins", [b * 100, "duplicate"]), ("Cnt", [])]
        batches.append(batch)
    results = {}
    for name, size in (("small", 1 << 20), ("roomy", 1 << 30)):
        with Database.open(tmp_path / name, sites_per_host=2, map_size_bytes=size) as db:
            db.execute_ddl(ddl)
            got = []
            for batch in batches:
                ids: list = []
                items = db.call_many(batch, txn_ids_out=ids)
                assert len(items) == len(ids) == len(batch)
                got.append([(r.status, r.tables[0].rows if r.tables else None)
                            for r in items])
            results[name] = (got, db.call("Cnt").tables[0].rows, db._procs["Ins"].stats[:2],
                             db._storage._map_size_bytes)
    small, roomy = results["small"], results["roomy"]
    assert small[3] > 1 << 20     # it grew
    assert small[:3] == roomy[:3]
    assert small[1] == [(1200,)] and small[2] == [1212, 12]


def test_run_point_calls_runs_compiled_calls_until_the_first_other_one(tmp_path):
    """The compiled loop of run_many: one result per call it ran, typed failures through
    make_error, the index of the first call that is not a compiled point procedure."""
    from voltdb_py.database import _FAST_ERRORS

    with Database.open(tmp_path / "db", sites_per_host=2) as db:
        db.execute_ddl(DDL)
        procs = db._procs
        calls = [("Ins", [1, 0, "a"]), ["Ins", (1, 0, "again"), None], ("Get", [0, 1]),
                 ("Ups", [2, 0, "b", 7]), ("Get", ["nope", 2]), ("@Ping", ()), ("Get", [0, 2])]
        out: list = ["before"]
        ids: list = []
        txn = db._storage.begin(write=True)
        try:
            stop = _engine.run_point_calls(txn, procs, calls, 0, out, ids, _FAST_ERRORS,
                                           lambda rt, exc: (rt.name, type(exc).__name__))
            db._storage.commit(txn)
        except BaseException:
            txn.abort()
            raise
        assert stop == 5 and ids == [()] * 5
        assert out[0] == "before"
        assert out[1] == (procs["Ins"].result_columns, [(1,)])
        assert out[2] == ("Ins", "ConstraintError")
        assert out[3][0] == procs["Get"].result_columns and out[3][1][0][0] == "a"
        assert out[4] == (procs["Ups"].result_columns, [(1,)])
        assert out[5] == ("Get", "TypeMismatchError")
        assert procs["Ins"].stats[:2] == [2, 1] and procs["Get"].stats[:2] == [2, 1]
        assert db.call("Get", 0, 2).tables[0].rows[0][0] == "b"
        # it starts where it is told and stops at once on a call it does not run
        assert _engine.run_point_calls(None, procs, calls, 5, out, None, _FAST_ERRORS,
                                       None) == 5
        with pytest.raises(TypeError):  # parameters that are not a sequence propagate
            _engine.run_point_calls(None, procs, [("Get", 5)], 0, [], None, _FAST_ERRORS,
                                    None)



# compiled inserts (group commits) around general-path updates (a commit each)
_STOOD_CALLS = [("TIns", [1, 0]), ("TIns", [2, 0]), ("TBump", [5, 1]), ("TIns", [3, 0]),
                ("TIns", [1, 9]), ("TBump", [7, 1]), ("TBump", [1, 2]), ("TIns", [4, 0]),
                ("TIns", [5, 0])]


def test_run_many_reports_the_calls_that_stood_when_a_commit_fails(tmp_path):
    """Whichever commit fails, stood_out holds the results of exactly the calls whose
    effects are in the database; running the other calls again gives what a run without
    the failure gives: every call applied once (the updates add, so a call run twice
    shows)."""
    from support.storage_faults import BUMP_DDL, bump_rows, fail_commits

    from voltdb_py.errors import StorageError

    with Database.open(tmp_path / "oracle", sites_per_host=2) as db:
        db.execute_ddl(BUMP_DDL)
        want_ids: list = []
        want = db.run_many(_STOOD_CALLS, txn_ids_out=want_ids)
        want_rows = bump_rows(db)
    assert want_rows == [(1, 12), (2, 1), (3, 0), (4, 0), (5, 0)]
    commits = 0
    fail_at = 1
    while True:
        with Database.open(tmp_path / f"f{fail_at}", sites_per_host=2) as db:
            db.execute_ddl(BUMP_DDL)
            real = db._storage.commit
            seen = fail_commits(db, {fail_at})
            stood: list = []
            ids: list = []
            try:
                db.run_many(_STOOD_CALLS, txn_ids_out=ids, stood_out=stood)
            except StorageError:
                pass
            else:  # fail_at is past the last commit: every failure point was tried
                commits = seen[0]
                break
            db._storage.commit = real
            assert len(ids) == len(stood) < len(_STOOD_CALLS)
            done = len(stood)
            # what stood is in the database, and nothing after it
            partial = {k: n for k, n in bump_rows(db)}
            with Database.open(tmp_path / f"o{fail_at}", sites_per_host=2) as ref:
                ref.execute_ddl(BUMP_DDL)
                ref.run_many(_STOOD_CALLS[:done])
                assert partial == {k: n for k, n in bump_rows(ref)}
            rest = db.run_many(_STOOD_CALLS[done:], txn_ids_out=ids)
            assert bump_rows(db) == want_rows
            got = stood + rest
            assert [type(r) for r in got] == [type(r) for r in want]
            assert [r if type(r) is tuple else r.status for r in got] == \
                [r if type(r) is tuple else r.status for r in want]
            assert len(ids) == len(_STOOD_CALLS)
            assert db._procs["TIns"].stats[0] == sum(c[0] == "TIns" for c in _STOOD_CALLS)
        fail_at += 1
    assert commits >= 4  # the groups and the updates each committed: all were failed once
