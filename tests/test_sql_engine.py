# SPDX-License-Identifier: AGPL-3.0-or-later
"""The SQL layer over the real engine (and the model): views whose groups span partitions
are re-aggregated for multi-partition reads (checked against sqlite3 recomputing the GROUP
BY over all source rows), single-partition reads see their partition's partial rows, and the
plan-time fast paths (point lookups, single-row INSERT/UPSERT) behave as the general path."""

import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from support.model import CLUSTER_KINDS, make_cluster  # noqa: E402

from voltdb_py.catalog.ddl import compile_ddl  # noqa: E402
from voltdb_py.catalog.model import Catalog  # noqa: E402
from voltdb_py.errors import (  # noqa: E402
    ConstraintError, MispartitionedError, PlanningError, SQLError, TypeMismatchError,
    ValueOutOfRangeError)
from voltdb_py.sql import explain, plan_statement  # noqa: E402
from voltdb_py.sql import executor as X  # noqa: E402

DDL = """
CREATE TABLE contestants (num INTEGER NOT NULL, name VARCHAR(10) NOT NULL, PRIMARY KEY (num));
CREATE TABLE votes (phone BIGINT NOT NULL, state VARCHAR(2) NOT NULL, contestant INTEGER NOT NULL,
                    amt INTEGER);
PARTITION TABLE votes ON COLUMN phone;
CREATE VIEW v_by_phone (phone, num_votes) AS SELECT phone, COUNT(*) FROM votes GROUP BY phone;
CREATE VIEW v_cs (contestant, state, num_votes, total, lo, hi)
  AS SELECT contestant, state, COUNT(*), SUM(amt), MIN(amt), MAX(amt) FROM votes
     GROUP BY contestant, state;
CREATE VIEW v_st (state, num_votes, total) AS SELECT state, COUNT(*), SUM(amt) FROM votes
  GROUP BY state;
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(8), n INTEGER DEFAULT 5 NOT NULL,
                 at TIMESTAMP DEFAULT NOW);
PARTITION TABLE kv ON COLUMN k;
"""


def catalog():
    return compile_ddl(Catalog(), DDL)


@pytest.fixture(params=CLUSTER_KINDS)
def kind(request):
    return request.param


def lite(votes, contestants=()):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE votes (phone INTEGER, state TEXT, contestant INTEGER, amt INTEGER)")
    db.execute("CREATE TABLE contestants (num INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO votes VALUES (?, ?, ?, ?)", votes)
    db.executemany("INSERT INTO contestants VALUES (?, ?)", contestants)
    return db


GROUPED = ("(SELECT contestant, state, COUNT(*) AS num_votes, SUM(amt) AS total, MIN(amt) AS lo, "
           "MAX(amt) AS hi FROM votes GROUP BY contestant, state)")

# (ours, sqlite over the recomputed GROUP BY, ordered)
QUERIES = [
    ("SELECT state, num_votes FROM v_cs WHERE contestant = 3",
     f"SELECT state, num_votes FROM {GROUPED} WHERE contestant = 3", False),
    ("SELECT contestant, state, num_votes, total, lo, hi FROM v_cs",
     f"SELECT contestant, state, num_votes, total, lo, hi FROM {GROUPED}", False),
    ("SELECT * FROM v_cs WHERE num_votes > 1 AND state <> 'b'",
     f"SELECT * FROM {GROUPED} WHERE num_votes > 1 AND state <> 'b'", False),
    ("SELECT COUNT(*), SUM(num_votes), MAX(num_votes), MIN(lo), MAX(total) FROM v_cs",
     f"SELECT COUNT(*), SUM(num_votes), MAX(num_votes), MIN(lo), MAX(total) FROM {GROUPED}", False),
    ("SELECT state, SUM(num_votes), COUNT(*) FROM v_cs GROUP BY state",
     f"SELECT state, SUM(num_votes), COUNT(*) FROM {GROUPED} GROUP BY state", False),
    ("SELECT c.name, v.state, v.num_votes FROM v_cs v, contestants c WHERE c.num = v.contestant",
     f"SELECT c.name, v.state, v.num_votes FROM {GROUPED} v, contestants c WHERE c.num = v.contestant",
     False),
    ("SELECT c.name, SUM(v.num_votes) AS t FROM v_cs v JOIN contestants c ON c.num = v.contestant "
     "GROUP BY c.name ORDER BY t DESC, c.name",
     f"SELECT c.name, SUM(v.num_votes) AS t FROM {GROUPED} v JOIN contestants c ON c.num = v.contestant "
     "GROUP BY c.name ORDER BY t DESC, c.name", True),
    ("SELECT contestant, state, num_votes FROM v_cs ORDER BY num_votes DESC, contestant, state LIMIT 3",
     f"SELECT contestant, state, num_votes FROM {GROUPED} ORDER BY num_votes DESC, contestant, state "
     "LIMIT 3", True),
    ("SELECT DISTINCT num_votes FROM v_cs WHERE contestant >= 2",
     f"SELECT DISTINCT num_votes FROM {GROUPED} WHERE contestant >= 2", False),
    ("SELECT state, num_votes, total FROM v_st",
     "SELECT state, COUNT(*), SUM(amt) FROM votes GROUP BY state", False),
]

vote = st.tuples(st.integers(1, 60), st.sampled_from(["a", "b", "c"]), st.integers(1, 4),
                 st.one_of(st.none(), st.integers(-5, 5)))


@pytest.mark.parametrize("kind_", CLUSTER_KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(vote, max_size=40), st.lists(st.integers(-5, 5), max_size=3), st.integers(1, 4))
def test_partial_view_reads_are_merged(kind_, votes, deletes, nparts):
    cat = catalog()
    contestants = [(1, "ann"), (2, "bob"), (3, "cid")]
    with make_cluster(kind_, cat, nparts) as c:
        for r in contestants:
            c.run("INSERT INTO contestants VALUES (?, ?)", list(r))
        for r in votes:
            c.run("INSERT INTO votes VALUES (?, ?, ?, ?)", list(r))
        for d in deletes:           # MIN/MAX recomputation and emptied groups
            c.run("DELETE FROM votes WHERE amt = ?", [d])
        kept = [r for r in votes if r[3] not in deletes]
        db = lite(kept, contestants)
        for ours, theirs, ordered in QUERIES:
            stmt = plan_statement(cat, ours)
            assert isinstance(stmt, X.PartialViewSelect), ours
            got = c.run(stmt).rows
            exp = db.execute(theirs).fetchall()
            if ordered:
                assert got == exp, ours
            else:
                assert Counter(got) == Counter(exp), (ours, got, exp)
        # the stored rows stay partial per partition (as in VoltDB)
        stored = c.rows("V_CS")
        groups = {(r[2], r[1]) for r in kept}
        assert len(stored) >= len(groups)
        if nparts == 1:
            assert len(stored) == len(groups)


@settings(max_examples=25, deadline=None)
@given(st.lists(vote, min_size=1, max_size=30), st.integers(2, 4))
def test_single_partition_statement_sees_its_partition(votes, nparts):
    """In a single-partition procedure (one fragment) the view's local rows are seen."""
    cat = catalog()
    with make_cluster("engine", cat, nparts) as c:
        for r in votes:
            c.run("INSERT INTO votes VALUES (?, ?, ?, ?)", list(r))
        stmt = plan_statement(cat, "SELECT contestant, state, num_votes FROM v_cs")
        vschema = c.schema_for(cat.tables["VOTES"])
        for pid in range(nparts):
            local = [r for _k, r in c.stores[pid].scan(c.txn, vschema)]
            got = stmt.merge([stmt.run_fragment(c.ctx(pid), [])]).rows
            exp = Counter((r[2], r[1]) for r in local)
            assert Counter(got) == Counter((k[0], k[1], n) for k, n in exp.items())


def test_partial_view_planning(kind):
    cat = catalog()
    s = plan_statement(cat, "SELECT state, num_votes FROM v_cs WHERE contestant = ?")
    assert isinstance(s, X.PartialViewSelect) and s.partitioning == ("multi",)
    assert s.param_count == 1
    assert "RE-AGGREGATE PARTIAL GROUPS of view(s) V_CS" in explain(s)
    # the group-column predicate narrows the fragments' index scan of the view
    assert 'INDEX SCAN of "V_CS"' in explain(s)
    # a view grouped by the partition column has whole groups: no re-aggregation
    p = plan_statement(cat, "SELECT num_votes FROM v_by_phone WHERE phone = ?")
    assert not isinstance(p, X.PartialViewSelect)
    assert p.partitioning == ("single", "V_BY_PHONE", "PHONE", ("param", 0))
    with pytest.raises(PlanningError, match="span partitions"):
        plan_statement(cat, "INSERT INTO votes (phone, state, contestant) "
                            "SELECT num_votes, state, contestant FROM v_cs")
    with pytest.raises(PlanningError, match="insufficient join criteria"):
        plan_statement(cat, "SELECT * FROM v_cs, votes WHERE v_cs.contestant = votes.contestant")
    c = make_cluster(kind, cat, 3)
    with c:
        for i in range(1, 30):
            c.run("INSERT INTO votes VALUES (?, ?, ?, ?)", [i, "ab"[i % 2], i % 3, i])
        assert sorted(c.run(s, [1]).rows) == [("a", 5), ("b", 5)]
        assert c.run(s, [None]).rows == []
        with pytest.raises(TypeMismatchError):
            c.run(s, ["x"])
        with pytest.raises(SQLError, match="expects 1 parameter"):
            c.run(s, [])


# ------------------------------------------------------------------ fast paths

def _general(stmt):
    """The same statement with its plan-time fast paths switched off."""
    import copy
    g = copy.copy(stmt)
    g._point = None
    g._fast = None
    return g


params = st.one_of(st.none(), st.integers(-3, 40), st.integers(2 ** 31 - 2, 2 ** 31 + 2),
                   st.sampled_from(["7", "x", 1.0, 2.5, True, b"\x01", "abcdefghij", "ab"]))


@pytest.mark.parametrize("kind_", CLUSTER_KINDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(params, params, params), max_size=12), st.integers(1, 3))
def test_fast_paths_equal_general_path(kind_, ops, nparts):
    """Point SELECT and single-row INSERT/UPSERT: the fast path and the general path give
    the same results, rows and errors (type, message) for any parameters."""
    cat = catalog()
    sqls = ["INSERT INTO kv (k, v) VALUES (?, ?)", "UPSERT INTO kv (k, v, n) VALUES (?, ?, ?)",
            "UPSERT INTO kv VALUES (?, ?, ?, NULL)", "SELECT v, n, at FROM kv WHERE k = ?",
            "SELECT k, v FROM kv WHERE k = ? AND n = 5", "SELECT n + 1, v FROM kv WHERE k = ?",
            "INSERT INTO kv (k, v, n) VALUES (?, 'c', ?)"]
    with make_cluster(kind_, cat, nparts) as a, make_cluster(kind_, cat, nparts) as b:
        for i, (p1, p2, p3) in enumerate(ops):
            stmt = plan_statement(cat, sqls[i % len(sqls)])
            ps = [p1, p2, p3][:stmt.param_count]
            outs = []
            for c, s in ((a, stmt), (b, _general(stmt))):
                try:
                    outs.append(("ok", sorted(c.run(s, ps).rows, key=repr)))
                except (SQLError, ConstraintError, TypeMismatchError, ValueOutOfRangeError) as e:
                    outs.append((type(e).__name__, str(e)))
            assert outs[0] == outs[1], (stmt.sql, ps)
        assert sorted(a.rows("KV")) == sorted(b.rows("KV"))


def test_fast_insert_checks(kind):
    cat = catalog()
    with make_cluster(kind, cat, 3) as c:
        ins = plan_statement(cat, "INSERT INTO kv (k, v) VALUES (?, ?)")
        assert ins._fast is not None
        sel = plan_statement(cat, "SELECT k, v, n, at FROM kv WHERE k = ?")
        assert sel._point is not None and sel.rest_filters == []
        c.run(ins, [1, "a"])
        assert c.run(sel, [1]).rows == [(1, "a", 5, c.now)]     # defaults, NOW
        with pytest.raises(ConstraintError):
            c.run(ins, [1, "b"])
        with pytest.raises(ValueOutOfRangeError):
            c.run(ins, [2, "x" * 9])
        with pytest.raises(ConstraintError, match="NOT NULL"):
            c.run(ins, [None, "x"])
        owner = c.partition_for("KV", 77)
        with pytest.raises(MispartitionedError):
            ins.run_fragment(c.ctx((owner + 1) % 3), [77, "m"])
        assert c.run(plan_statement(cat, "UPSERT INTO kv (k, v) VALUES (?, ?)"), [1, "z"]).rows == [(1,)]
        assert c.run(sel, [1]).rows == [(1, "z", 5, c.now)]      # explicit columns only
        assert c.run(sel, [2 ** 40]).rows == []                  # out of the key's range
        assert c.run(sel, [None]).rows == []


def test_view_maintenance_through_engine_rowkeys():
    """Views over the engine: update/delete use engine row keys (table id included)."""
    cat = catalog()
    with make_cluster("engine", cat, 2) as c:
        for i in range(10):
            c.run("INSERT INTO votes VALUES (?, ?, ?, ?)", [i, "a", 1, i])
        c.run("UPDATE votes SET amt = amt + 100 WHERE amt >= 5")
        c.run("DELETE FROM votes WHERE amt = 109")
        got = c.run("SELECT num_votes, total, lo, hi FROM v_cs").rows
        assert got == [(9, sum(range(5)) + sum(range(105, 109)), 0, 108)]
        assert c.run("SELECT num_votes FROM v_by_phone WHERE phone = 9").rows == []
        assert c.run("SELECT num_votes FROM v_by_phone WHERE phone = 8").rows == [(1,)]
