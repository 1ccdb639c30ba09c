# SPDX-License-Identifier: AGPL-3.0-or-later
"""Materialized views always equal their GROUP BY query recomputed from the source rows."""

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from support.model import CLUSTER_KINDS, make_cluster  # noqa: E402

from voltdb_py.catalog.model import Catalog, Column, Index, Table, ViewDef  # noqa: E402
from voltdb_py.errors import ConstraintError  # noqa: E402
from voltdb_py.sql import maintain_views_on_delete, maintain_views_on_insert  # noqa: E402
from voltdb_py.types import VoltType as V  # noqa: E402

AGGS = [("COUNT", None), ("COUNT", "Q"), ("SUM", "Q"), ("MIN", "Q"), ("MAX", "Q"), ("MIN", "S"), ("MAX", "S")]


def _view(name, tid, source, src_cols, group, aggs, partitioned, pk=True, count_star=True):
    cols = [Column(g, src_cols[g]) for g in group]
    for i, (f, c) in enumerate(aggs):
        t = V.BIGINT if f in ("COUNT", "SUM") else src_cols[c]
        cols.append(Column(f"A{i}", t))
    return Table(name, tid, cols, primary_key=list(group) if pk and group else None, partitioned=partitioned,
                 indexes=[Index(f"PK_{name}", tid + 1, name, list(group), unique=True, primary_key=True)]
                 if pk and group else [],
                 view=ViewDef(source, list(group), list(aggs)))


def catalog():
    cat = Catalog()
    src_cols = {"ID": V.INTEGER, "G": V.STRING, "H": V.INTEGER, "Q": V.INTEGER, "S": V.STRING}
    cols = [Column("ID", V.INTEGER, nullable=False), Column("G", V.STRING, 4), Column("H", V.INTEGER),
            Column("Q", V.INTEGER), Column("S", V.STRING, 4)]
    cat.tables["T"] = Table("T", 1, list(cols), primary_key=["ID"], partitioned=True, partition_column="ID",
                            indexes=[Index("PK_T", 2, "T", ["ID"], unique=True, primary_key=True)])
    cat.tables["R"] = Table("R", 3, list(cols), primary_key=["ID"],
                            indexes=[Index("PK_R", 4, "R", ["ID"], unique=True, primary_key=True)])
    cat.tables["VG"] = _view("VG", 10, "T", src_cols, ["G"], AGGS, True)
    cat.tables["VGH"] = _view("VGH", 12, "T", src_cols, ["G", "H"], AGGS[:3], True, pk=False)
    cat.tables["VALL"] = _view("VALL", 14, "T", src_cols, [], [("COUNT", None), ("SUM", "Q"), ("MAX", "S")], True)
    cat.tables["VR"] = _view("VR", 16, "R", src_cols, ["H"], AGGS, False)
    cat.tables["VNOCNT"] = _view("VNOCNT", 18, "T", src_cols, ["H"], [("SUM", "Q"), ("MIN", "Q")], True)
    vw = _view("VW", 20, "T", src_cols, ["G"], AGGS, True)
    vw.view.where = "Q > 0 AND S IS NOT NULL"
    cat.tables["VW"] = vw
    cat.next_id = 30
    return cat


def expected(rows, gpos, aggs, colpos):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[p] for p in gpos), []).append(r)
    out = set()
    for g, rs in groups.items():
        vals = []
        for f, c in aggs:
            if c is None:
                vals.append(len(rs))
                continue
            xs = [r[colpos[c]] for r in rs if r[colpos[c]] is not None]
            if f == "COUNT":
                vals.append(len(xs))
            elif not xs:
                vals.append(None)
            else:
                vals.append({"SUM": sum, "MIN": min, "MAX": max}[f](xs))
        out.add(g + tuple(vals))
    return out


def check_views(c):
    colpos = {"ID": 0, "G": 1, "H": 2, "Q": 3, "S": 4}
    for v in [t for t in c.catalog.tables.values() if t.view]:
        src = c.catalog.tables[v.view.source]
        stores = c.stores if src.partitioned else [c.rep]
        for store in stores:
            rows = c.store_rows(store, c.schema_for(src))
            if v.view.where:
                rows = [r for r in rows if r[3] is not None and r[3] > 0 and r[4] is not None]
            vrows = c.store_rows(store, c.schema_for(v))
            got = set(vrows)
            exp = expected(rows, [colpos[g] for g in v.view.group_by], v.view.aggregates, colpos)
            assert len(got) == len(vrows), v.name
            assert got == exp, (v.name, got, exp)


small = st.one_of(st.none(), st.integers(-3, 3))
gstr = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
row = st.tuples(st.integers(0, 12), gstr, small, small, gstr)
ops = st.lists(st.one_of(
    st.tuples(st.just("insert"), row),
    st.tuples(st.just("upsert"), row),
    st.tuples(st.just("update"), st.integers(0, 12), st.sampled_from(["G", "H", "Q", "S"]), st.one_of(small, gstr)),
    st.tuples(st.just("update_where"), st.sampled_from(["G", "H"]), small, small),
    st.tuples(st.just("delete"), st.integers(0, 12)),
    st.tuples(st.just("delete_where"), small),
    st.tuples(st.just("truncate"),),
), max_size=25)


def apply(c, table, op):
    kind = op[0]
    try:
        if kind in ("insert", "upsert"):
            c.run(f"{kind.upper()} INTO {table} VALUES (?, ?, ?, ?, ?)", list(op[1]))
        elif kind == "update":
            _, i, col, val = op
            if col in ("G", "S") and not (val is None or isinstance(val, str)):
                val = str(val)
            if col in ("H", "Q") and isinstance(val, str):
                val = len(val)
            c.run(f"UPDATE {table} SET {col} = ? WHERE ID = ?", [val, i])
        elif kind == "update_where":
            _, col, old, new = op
            c.run(f"UPDATE {table} SET Q = ? WHERE H = ?" if col == "H" else
                  f"UPDATE {table} SET H = ?, Q = Q + 1 WHERE Q = ?", [new, old])
        elif kind == "delete":
            c.run(f"DELETE FROM {table} WHERE ID = ?", [op[1]])
        elif kind == "delete_where":
            c.run(f"DELETE FROM {table} WHERE Q IS NULL" if op[1] is None else
                  f"DELETE FROM {table} WHERE Q >= ?", [op[1]] if op[1] is not None else [])
        else:
            c.run(f"TRUNCATE TABLE {table}")
    except ConstraintError:
        pass


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
@settings(max_examples=120, deadline=None)
@given(ops, st.integers(1, 3))
def test_views_equal_group_by_after_random_writes(kind, seq, nparts):
    with make_cluster(kind, catalog(), nparts) as c:
        for op in seq:
            apply(c, "T", op)
            apply(c, "R", op)
            check_views(c)


@pytest.fixture(params=CLUSTER_KINDS)
def kind(request):
    return request.param


def test_view_row_removed_when_group_empties(kind):
    with make_cluster(kind, catalog(), 1) as c:
        _group_empties(c)


def _group_empties(c):
    c.run("INSERT INTO T VALUES (1, 'a', 1, 5, 'x')")
    c.run("INSERT INTO T VALUES (2, 'a', 1, 9, 'y')")
    vg = c.catalog.tables["VG"]
    assert c.rows("VG") == [("a", 2, 2, 14, 5, 9, "x", "y")]
    c.run("DELETE FROM T WHERE ID = 2")          # MAX recomputed from the source
    assert c.rows("VG") == [("a", 1, 1, 5, 5, 5, "x", "x")]
    c.run("UPDATE T SET Q = NULL WHERE ID = 1")  # SUM becomes NULL
    assert c.rows("VG") == [("a", 1, 0, None, None, None, "x", "x")]
    c.run("DELETE FROM T WHERE ID = 1")
    assert c.rows("VG") == [] and c.rows("VALL") == []
    assert vg.view.source == "T"


def test_streaming_hooks(kind):
    with make_cluster(kind, catalog(), 1) as c:
        _streaming_hooks(c)


def _streaming_hooks(c):
    ctx = c.ctx(0)
    schema = c.schema_for(c.catalog.tables["T"])
    r1 = (1, "a", 2, 3, "s")
    rk = c.stores[0].insert(c.txn, schema, r1)     # as import_chunk would
    maintain_views_on_insert(ctx, 1, r1)
    check_views(c)
    assert c.rows("VG") == [("a", 1, 1, 3, 3, 3, "s", "s")]
    c.stores[0].delete(c.txn, schema, rk)           # as delete_range would
    maintain_views_on_delete(ctx, 1, r1)
    check_views(c)
    assert c.rows("VG") == []
