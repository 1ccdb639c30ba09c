# SPDX-License-Identifier: AGPL-3.0-or-later
"""Catalog bytes (serialize.py) and engine schema arguments (runtime.py)."""

from __future__ import annotations

import copy
import pathlib
import struct

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from voltdb_py.catalog import Catalog
from voltdb_py.catalog.ddl import compile_ddl
from voltdb_py.catalog.runtime import table_schema_args
from voltdb_py.catalog.serialize import (
    FORMAT_VERSION, MAGIC, catalog_from_bytes, catalog_to_bytes,
)
from voltdb_py.errors import CodecError
from voltdb_py.types import VoltType

ROOT = pathlib.Path(__file__).resolve().parent.parent


def loader(path):
    return type(path.rpartition(".")[2], (), {})


def compiled(name):
    return compile_ddl(Catalog(), (ROOT / name).read_text(), class_loader=loader)


# ------------------------------------------------------------------ generated DDL

_TYPES = {
    "TINYINT": st.integers(-127, 127).map(str),
    "SMALLINT": st.integers(-32767, 32767).map(str),
    "INTEGER": st.integers(-2**31 + 1, 2**31 - 1).map(str),
    "BIGINT": st.integers(-2**63 + 1, 2**63 - 1).map(str),
    "FLOAT": st.floats(-1e100, 1e100, allow_nan=False).map(repr),
    "DECIMAL": st.decimals(-10**12, 10**12, places=4, allow_nan=False,
                           allow_infinity=False).map(str),
    "VARCHAR(20)": st.text("abc'xyz; ", max_size=20).map(lambda s: "'" + s.replace("'", "''") + "'"),
    "VARCHAR(9 BYTES)": st.text("abcé", max_size=4).map(lambda s: f"'{s}'"),
    "VARBINARY(8)": st.binary(max_size=8).map(lambda b: f"x'{b.hex()}'"),
    "TIMESTAMP": st.sampled_from(["NOW", "CURRENT_TIMESTAMP", "'2001-02-03 04:05:06.789'"]),
}
_PART_OK = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "VARCHAR(20)", "VARBINARY(8)"]


@st.composite
def ddl_scripts(draw):
    stmts = []
    for ti in range(draw(st.integers(1, 3))):
        tname = f"t{ti}"
        n = draw(st.integers(1, 6))
        types = [draw(st.sampled_from(sorted(_TYPES))) for _ in range(n)]
        cols = []
        for ci, ty in enumerate(types):
            spec = f"c{ci} {ty}"
            if draw(st.booleans()):
                spec += " NOT NULL"
            if draw(st.booleans()):
                spec += " DEFAULT " + draw(_TYPES[ty])
            cols.append(spec)
        part_candidates = [i for i, ty in enumerate(types) if ty in _PART_OK]
        part = draw(st.sampled_from(part_candidates)) if part_candidates and draw(
            st.booleans()) else None
        if part is not None:
            cols[part] = cols[part].replace(" NOT NULL", "") + " NOT NULL"
        pk = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=3))
        if pk and part is not None and part not in pk:
            pk.append(part)
        if pk:
            cols.append("PRIMARY KEY (" + ", ".join(f"c{i}" for i in pk) + ")")
        stmts.append(f"CREATE TABLE {tname} ({', '.join(cols)})")
        if part is not None:
            stmts.append(f"PARTITION TABLE {tname} ON COLUMN c{part}")
        for k in range(draw(st.integers(0, 2))):
            icols = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=1, max_size=3))
            kind = draw(st.sampled_from(["", "UNIQUE ", "ASSUMEUNIQUE "]))
            if kind == "ASSUMEUNIQUE " and part is None:
                kind = "UNIQUE "
            if kind == "UNIQUE " and part is not None and part not in icols:
                icols.append(part)
            stmts.append(f"CREATE {kind}INDEX {tname}_ix{k} ON {tname} "
                         f"({', '.join(f'c{i}' for i in icols)})")
        if draw(st.booleans()):
            g = draw(st.integers(0, n - 1))
            aggs = ["COUNT(*) AS n"]
            for ci, ty in enumerate(types):
                if ty in ("INTEGER", "FLOAT", "DECIMAL") and draw(st.booleans()):
                    aggs.append(f"SUM(c{ci}) AS s{ci}")
                if draw(st.booleans()):
                    aggs.append(f"MAX(c{ci}) AS m{ci}")
            stmts.append(f"CREATE VIEW {tname}_v AS SELECT c{g}, {', '.join(aggs)} "
                         f"FROM {tname} GROUP BY c{g}")
        if part is not None and draw(st.booleans()):
            stmts.append(f"CREATE PROCEDURE {tname}_get PARTITION ON TABLE {tname} COLUMN "
                         f"c{part} AS SELECT * FROM {tname} WHERE c{part} = ?")
        if draw(st.booleans()):
            stmts.append(f"CREATE PROCEDURE FROM CLASS gen.pkg.Proc{ti}")
    return ";\n".join(stmts) + ";"


@given(ddl_scripts())
@settings(deadline=None)
def test_generated_ddl_round_trips(script):
    cat = compile_ddl(Catalog(), script, class_loader=loader)
    data = catalog_to_bytes(cat)
    back = catalog_from_bytes(data)
    assert back == cat
    assert list(back.tables) == list(cat.tables)
    assert catalog_to_bytes(back) == data
    # every table gives consistent engine arguments
    for t in cat.tables.values():
        args = table_schema_args(t)
        assert args[0] == t.table_id and len(args[1]) == len(t.columns)
    # a second batch on top (drop everything) also round-trips and keeps ids unique
    drops = "".join(f"DROP VIEW {n};" for n, t in cat.tables.items() if t.is_view)
    cat2 = compile_ddl(cat, drops + "CREATE TABLE extra (a INT);", class_loader=loader)
    assert catalog_from_bytes(catalog_to_bytes(cat2)) == cat2
    ids = [t.table_id for t in cat2.tables.values()] + [
        ix.index_id for t in cat2.tables.values() for ix in t.indexes]
    assert len(ids) == len(set(ids)) and max(ids) < cat2.next_id


def test_fixtures_round_trip():
    for name in ("python/voltdb_py/examples/voter/ddl.sql", "tests/data/all_features.sql"):
        cat = compiled(name)
        assert catalog_from_bytes(catalog_to_bytes(cat)) == cat


def test_altered_and_empty_catalogs_round_trip():
    assert catalog_from_bytes(catalog_to_bytes(Catalog())) == Catalog()
    cat = compile_ddl(Catalog(), "CREATE TABLE t (a INT NOT NULL)")
    cat = compile_ddl(cat, "ALTER TABLE t ADD COLUMN b DECIMAL DEFAULT 1.5")
    back = catalog_from_bytes(catalog_to_bytes(cat))
    assert back.tables["T"].altered_from == cat.tables["T"].altered_from is not None
    assert back.tables["T"].column("B").default == cat.tables["T"].column("B").default


# ------------------------------------------------------------------ bad bytes


def _body(cat):
    return msgpack.unpackb(catalog_to_bytes(cat)[10:], raw=False,
                           ext_hook=lambda c, d: msgpack.ExtType(c, d))


def _pack(body, version=FORMAT_VERSION, magic=MAGIC):
    return struct.pack(">8sH", magic, version) + msgpack.packb(body, use_bin_type=True)


@pytest.mark.parametrize("data", [
    b"", b"VDBCATLG", b"NOTACATALOG!!", MAGIC + b"\x00\x01" + b"\xc1",
    MAGIC + b"\x00\x01" + b"\x92\x01",      # a msgpack array, not a map
    MAGIC + b"\x00\x01",                    # no body
])
def test_garbage_is_codec_error(data):
    with pytest.raises(CodecError):
        catalog_from_bytes(data)


def test_wrong_version_and_magic():
    good = catalog_to_bytes(compiled("python/voltdb_py/examples/voter/ddl.sql"))
    with pytest.raises(CodecError, match="version 2"):
        catalog_from_bytes(good[:8] + b"\x00\x02" + good[10:])
    with pytest.raises(CodecError, match="magic"):
        catalog_from_bytes(b"X" + good[1:])


def test_structurally_wrong_bodies():
    cat = compiled("tests/data/all_features.sql")
    body = _body(cat)
    for mutate, fragment in [
        (lambda b: b.pop("tables"), "tables"),
        (lambda b: b["tables"][0].pop("table_id"), "table_id"),
        (lambda b: b["tables"][0]["columns"][0].__setitem__("vtype", 99), "type code"),
        (lambda b: b["tables"][0]["columns"][0].__setitem__("size", "big"), "size"),
        (lambda b: b["tables"][0].__setitem__("partitioned", 1), "partitioned"),
        (lambda b: b["procedures"][0].__setitem__("partition_parameter", True),
         "partition_parameter"),
        (lambda b: b["tables"].append(b["tables"][0]), "duplicate"),
        (lambda b: b.__setitem__("classes", [1]), "classes"),
    ]:
        bad = copy.deepcopy(body)
        mutate(bad)
        with pytest.raises(CodecError, match=fragment):
            catalog_from_bytes(_pack(bad))


def test_unknown_ext_type_is_codec_error():
    body = _body(Catalog())
    body["classes"] = []
    body["tables"] = [{"name": "T", "table_id": 1, "columns": [
        {"name": "A", "vtype": int(VoltType.DECIMAL), "size": 0, "in_bytes": False,
         "nullable": True, "has_default": True, "default": msgpack.ExtType(7, b"x")}],
        "primary_key": None, "partitioned": False, "partition_column": None, "indexes": [],
        "view": None}]
    with pytest.raises(CodecError, match="extension type 7"):
        catalog_from_bytes(_pack(body))


# ------------------------------------------------------------------ runtime args


def test_table_schema_args_voter_and_features():
    cat = compiled("python/voltdb_py/examples/voter/ddl.sql")
    votes = cat.tables["VOTES"]
    assert table_schema_args(votes) == (
        votes.table_id,
        [(int(VoltType.BIGINT), 0, False, False), (int(VoltType.STRING), 2, False, False),
         (int(VoltType.INTEGER), 0, False, False)],
        None, 0, True, [])
    cont = cat.tables["CONTESTANTS"]
    tid, cols, pk, pcol, partitioned, idx = table_schema_args(cont)
    assert pk == [0] and pcol == -1 and partitioned is False
    assert idx == [(cont.indexes[0].index_id, [0], True)]
    v = cat.tables["V_VOTES_BY_CONTESTANT_NUMBER_STATE"]
    tid, cols, pk, pcol, partitioned, idx = table_schema_args(v)
    assert pk == [0, 1] and pcol == -1 and partitioned is True
    assert idx == [(v.indexes[0].index_id, [0, 1], True)]

    f = compiled("tests/data/all_features.sql")
    orders = f.tables["ORDERS"]
    tid, cols, pk, pcol, partitioned, idx = table_schema_args(orders)
    assert pk == [1, 0] and pcol == 1 and partitioned
    byid = {i.index_id: i for i in orders.indexes}
    got = {byid[i].name: (pos, u) for i, pos, u in idx}
    assert got["VOLTDB_AUTOGEN_CONSTRAINT_IDX_PK_ORDERS"] == ([1, 0], True)
    assert got["VOLTDB_AUTOGEN_IDX_CT_ORDERS_ORDER_ID"] == ([0], True)   # ASSUMEUNIQUE
    assert got["IX_ORDERS_AMOUNT"] == ([2, 3], False)
    cust = f.tables["CUSTOMER"]
    assert table_schema_args(cust)[1][1] == (int(VoltType.STRING), 16, True, False)


def test_table_schema_args_follows_alter():
    cat = compile_ddl(Catalog(), "CREATE TABLE t (a INT NOT NULL, b INT, PRIMARY KEY (a));"
                                 "CREATE INDEX ib ON t (b);")
    cat = compile_ddl(cat, "ALTER TABLE t ADD COLUMN z VARCHAR(5) BEFORE a")
    t = cat.tables["T"]
    tid, cols, pk, pcol, part, idx = table_schema_args(t)
    assert tid == t.table_id and cols[0] == (int(VoltType.STRING), 5, False, True)
    assert pk == [1] and sorted(p for _, p, _ in idx) == [[1], [2]]
