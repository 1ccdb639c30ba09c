# SPDX-License-Identifier: AGPL-3.0-or-later
"""Unit tests of the SQL layer per feature and per error, over ModelStore partitions and over
the real engine (LMDB PartitionStores, build_table_schema schemas, the real hashinator)."""

import decimal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.model import CLUSTER_KINDS, make_cluster  # noqa: E402

from voltdb_py.catalog.model import Catalog, Column, Index, Table, ViewDef  # noqa: E402
from voltdb_py.errors import (  # noqa: E402
    ConstraintError, MispartitionedError, PlanningError, SQLError, TypeMismatchError,
    ValueOutOfRangeError)
from voltdb_py.sql import explain, plan_statement  # noqa: E402
from voltdb_py.types import VoltType as V  # noqa: E402


def catalog():
    cat = Catalog()
    cat.tables["T"] = Table("T", 1, [
        Column("ID", V.INTEGER, nullable=False), Column("NAME", V.STRING, 10),
        Column("QTY", V.INTEGER, has_default=True, default=7), Column("PRICE", V.DECIMAL),
        Column("TS", V.TIMESTAMP), Column("REQ", V.SMALLINT, nullable=False, has_default=True, default=0)],
        primary_key=["ID"], partitioned=True, partition_column="ID",
        indexes=[Index("PK_T", 2, "T", ["ID"], unique=True, primary_key=True),
                 Index("IX_NAME", 3, "T", ["NAME", "QTY"])])
    cat.tables["U"] = Table("U", 4, [Column("ID", V.INTEGER, nullable=False), Column("X", V.INTEGER)],
                            partitioned=True, partition_column="ID")
    cat.tables["R"] = Table("R", 5, [Column("K", V.INTEGER, nullable=False), Column("LABEL", V.STRING, 20),
                                     Column("U", V.STRING, 5)],
                            primary_key=["K"],
                            indexes=[Index("PK_R", 6, "R", ["K"], unique=True, primary_key=True),
                                     Index("UQ_R", 7, "R", ["U"], unique=True)])
    cat.tables["NOPK"] = Table("NOPK", 8, [Column("A", V.INTEGER, nullable=False), Column("B", V.INTEGER)])
    cat.tables["V_NAME"] = Table("V_NAME", 9, [Column("NAME", V.STRING, 10), Column("CNT", V.BIGINT),
                                               Column("TOTAL", V.BIGINT)],
                                 primary_key=["NAME"], partitioned=True,
                                 view=ViewDef("T", ["NAME"], [("COUNT", None), ("SUM", "QTY")]))
    cat.next_id = 20
    return cat


@pytest.fixture(params=CLUSTER_KINDS)
def cluster(request):
    """cluster(catalog, nparts) -> a model or engine cluster, closed after the test."""
    made = []

    def factory(cat, nparts=3):
        c = make_cluster(request.param, cat, nparts)
        made.append(c)
        return c
    yield factory
    for c in made:
        c.close()


@pytest.fixture
def db(cluster):
    c = cluster(catalog(), 3)
    for i in range(1, 11):
        c.run("INSERT INTO T (ID, NAME, QTY, PRICE) VALUES (?, ?, ?, ?)",
              [i, [None, "apple", "pear"][i % 3], i * 10, decimal.Decimal(i) / 4])
    for k in range(1, 4):
        c.run("INSERT INTO R VALUES (?, ?, ?)", [k, f"label{k}", f"u{k}"])
    return c


def q(db, sql, *params):
    return db.run(plan_statement(db.catalog, sql), list(params)).rows


# ---------------------------------------------------------------- statement attributes

def test_statement_attributes():
    cat = catalog()
    s = plan_statement(cat, "SELECT NAME, COUNT(*) FROM T WHERE ID = ? AND QTY > ? GROUP BY NAME")
    assert s.kind == "select" and s.read_only and s.param_count == 2
    assert s.param_types == [V.INTEGER, V.INTEGER]
    assert s.partitioning == ("single", "T", "ID", ("param", 0))
    assert [c.name for c in s.result_columns] == ["NAME", "C2"]
    assert [c.type for c in s.result_columns] == [V.STRING, V.BIGINT]
    assert s.tables_read == ["T"] and s.tables_written == []
    assert plan_statement(cat, "SELECT * FROM T WHERE ID = 5").partitioning == ("single", "T", "ID", ("const", 5))
    assert plan_statement(cat, "SELECT * FROM T WHERE ID > 5").partitioning == ("multi",)
    assert plan_statement(cat, "SELECT * FROM T WHERE ID = 5 OR ID = 6").partitioning == ("multi",)
    assert plan_statement(cat, "SELECT * FROM R").partitioning == ("replicated",)
    ins = plan_statement(cat, "INSERT INTO T (NAME, ID) VALUES (?, ?)")
    assert ins.kind == "insert" and not ins.read_only and ins.tables_written == ["T"]
    assert ins.partitioning == ("single", "T", "ID", ("param", 1))
    assert ins.param_types == [V.STRING, V.INTEGER]
    assert plan_statement(cat, "UPSERT INTO R VALUES (1, 'a', 'b')").kind == "upsert"
    assert plan_statement(cat, "INSERT INTO R VALUES (1, 'a', 'b')").partitioning == ("replicated",)
    assert plan_statement(cat, "DELETE FROM T WHERE ID = ?").partitioning[0] == "single"
    assert plan_statement(cat, "TRUNCATE TABLE T").partitioning == ("multi",)
    assert plan_statement(cat, "SELECT '?' FROM R WHERE K = ?").param_count == 1


def test_params_numbered_left_to_right():
    cat = catalog()
    s = plan_statement(cat, "SELECT ID FROM T WHERE NAME = ? AND QTY BETWEEN ? AND ? LIMIT ?")
    assert s.param_types == [V.STRING, V.INTEGER, V.INTEGER, V.INTEGER]


# ---------------------------------------------------------------- SELECT features

def test_select_star_and_projection(db):
    assert q(db, "SELECT * FROM T WHERE ID = 4") == [(4, "apple", 40, decimal.Decimal("1.000000000000"), None, 0)]
    assert q(db, "SELECT ID * 2 AS D, NAME || '-' || ID FROM T WHERE ID = 3") == [(6, None)]
    assert q(db, "SELECT T.* FROM T WHERE ID = 3") == [(3, None, 30, decimal.Decimal("0.75"), None, 0)]


def test_where_operators(db):
    ids = lambda sql, *p: sorted(r[0] for r in q(db, sql, *p))  # noqa: E731
    assert ids("SELECT ID FROM T WHERE ID <> 3 AND ID != 4 AND ID < 6") == [1, 2, 5]
    assert ids("SELECT ID FROM T WHERE ID IN (1, 5, ?)", 9) == [1, 5, 9]
    assert ids("SELECT ID FROM T WHERE ID NOT IN (1, 2) AND ID <= 4") == [3, 4]
    assert ids("SELECT ID FROM T WHERE ID BETWEEN 3 AND 5") == [3, 4, 5]
    assert ids("SELECT ID FROM T WHERE ID NOT BETWEEN 3 AND 9") == [1, 2, 10]
    assert ids("SELECT ID FROM T WHERE NAME LIKE 'p_a%'") == [2, 5, 8]
    assert ids("SELECT ID FROM T WHERE NAME IS NULL") == [3, 6, 9]
    assert ids("SELECT ID FROM T WHERE NOT (NAME IS NOT NULL) OR ID = 1") == [1, 3, 6, 9]
    assert ids("SELECT ID FROM T WHERE NAME = ? AND QTY >= ?", "apple", 70) == [7, 10]
    assert ids("SELECT ID FROM T WHERE NAME NOT LIKE '%e%'") == []
    assert ids("SELECT ID FROM T WHERE PRICE > 2") == [9, 10]


def test_like_escape(cluster):
    c = cluster(catalog(), 2)
    for k, lab in enumerate(["50%", "50x", "a_b", "axb"]):
        c.run("INSERT INTO R VALUES (?, ?, ?)", [k, lab, None])
    assert sorted(r[0] for r in q(c, "SELECT LABEL FROM R WHERE LABEL LIKE '50!%' ESCAPE '!'")) == ["50%"]
    assert sorted(r[0] for r in q(c, "SELECT LABEL FROM R WHERE LABEL LIKE 'a\\_b' ESCAPE '\\'")) == ["a_b"]


def test_arithmetic_and_functions(db):
    row = q(db, "SELECT 7 / 2, -7 / 2, 7 % 3, -7 % 3, MOD(7, 3), 2.5 * 2, ABS(-3), CEILING(2.1), FLOOR(2.9), "
                "ROUND(2.567, 2), POWER(2, 10), SQRT(16), LOWER('AbC'), UPPER('abc'), CHAR_LENGTH('abcd'), "
                "SUBSTRING('abcdef', 2, 3), TRIM('  x  '), CONCAT('a', 'b', 'c'), COALESCE(NULL, 3), "
                "CASE WHEN 1 > 2 THEN 'no' ELSE 'yes' END, CASE 2 WHEN 1 THEN 'a' WHEN 2 THEN 'b' END, "
                "NOW, CURRENT_TIMESTAMP FROM R WHERE K = 1")[0]
    assert row == (3, -3, 1, -1, 1, 5.0, 3, 3.0, 2.0, 2.57, 1024.0, 4.0, "abc", "ABC", 4, "bcd", "x", "abc", 3,
                   "yes", "b", db.now, db.now)
    assert q(db, "SELECT PRICE * 2 FROM T WHERE ID = 1") == [(decimal.Decimal("0.5"),)]


def test_division_by_zero(db):
    with pytest.raises(SQLError, match="division by zero"):
        q(db, "SELECT ID / 0 FROM T WHERE ID = 1")
    with pytest.raises(SQLError, match="division by zero"):
        q(db, "SELECT QTY / (ID - 1) FROM T")


def test_overflow(db):
    with pytest.raises(ValueOutOfRangeError):
        q(db, "SELECT 9223372036854775807 + ID FROM T WHERE ID = 1")


def test_aggregates(db):
    assert q(db, "SELECT COUNT(*), COUNT(NAME), COUNT(DISTINCT NAME), SUM(QTY), MIN(QTY), MAX(NAME), AVG(QTY) FROM T") \
        == [(10, 7, 2, 550, 10, "pear", 55)]
    assert q(db, "SELECT COUNT(*), SUM(QTY), MAX(ID), AVG(QTY) FROM T WHERE ID > 100") == [(0, None, None, None)]
    assert sorted(q(db, "SELECT NAME, COUNT(*), SUM(QTY) FROM T GROUP BY NAME"), key=str) == \
        sorted([("apple", 4, 220), ("pear", 3, 150), (None, 3, 180)], key=str)
    assert q(db, "SELECT NAME, COUNT(*) AS C FROM T GROUP BY NAME HAVING COUNT(*) > 3") == [("apple", 4)]
    assert q(db, "SELECT NAME, SUM(QTY) * 2 FROM T WHERE NAME IS NOT NULL GROUP BY NAME ORDER BY 2 DESC") == \
        [("apple", 440), ("pear", 300)]
    assert q(db, "SELECT AVG(PRICE) FROM T") == [(decimal.Decimal("1.375"),)]
    assert q(db, "SELECT COUNT(*) FROM T WHERE ID = 3") == [(1,)]


def test_order_limit_offset(db):
    assert q(db, "SELECT ID FROM T ORDER BY ID DESC LIMIT 3") == [(10,), (9,), (8,)]
    assert q(db, "SELECT ID FROM T ORDER BY ID LIMIT ? OFFSET ?", 2, 3) == [(4,), (5,)]
    assert q(db, "SELECT NAME, ID FROM T ORDER BY NAME, ID DESC LIMIT 4") == \
        [(None, 9), (None, 6), (None, 3), ("apple", 10)]
    assert q(db, "SELECT ID AS X FROM T ORDER BY X DESC LIMIT 1") == [(10,)]
    assert q(db, "SELECT ID FROM T ORDER BY QTY * -1 LIMIT 2") == [(10,), (9,)]
    assert q(db, "SELECT NAME FROM T ORDER BY NAME DESC LIMIT 2") == [("pear",), ("pear",)]
    assert q(db, "SELECT DISTINCT NAME FROM T ORDER BY NAME") == [(None,), ("apple",), ("pear",)]


def test_joins(db):
    assert sorted(q(db, "SELECT T.ID, R.LABEL FROM T JOIN R ON T.ID = R.K")) == \
        [(1, "label1"), (2, "label2"), (3, "label3")]
    assert q(db, "SELECT t.ID, r.LABEL FROM T t, R r WHERE t.ID = r.K AND t.ID = ?", 2) == [(2, "label2")]
    c = db
    for i in range(1, 5):
        c.run("INSERT INTO U VALUES (?, ?)", [i, i * i])
    assert sorted(q(c, "SELECT T.ID, U.X FROM T JOIN U ON T.ID = U.ID WHERE U.X > 3")) == [(2, 4), (3, 9), (4, 16)]
    with pytest.raises(PlanningError, match="insufficient join criteria"):
        plan_statement(c.catalog, "SELECT * FROM T JOIN U ON T.QTY = U.X")


def test_access_paths_in_explain():
    cat = catalog()
    assert "PRIMARY KEY LOOKUP" in explain(plan_statement(cat, "SELECT * FROM T WHERE ID = ?"))
    e = explain(plan_statement(cat, "SELECT * FROM T WHERE NAME = ? AND QTY > 3"))
    assert 'INDEX SCAN of "T" using "IX_NAME"' in e and "MULTI-PARTITION" in e
    assert "SEQUENTIAL SCAN" in explain(plan_statement(cat, "SELECT * FROM T WHERE QTY = 1"))
    assert "SINGLE PARTITION" in explain(plan_statement(cat, "DELETE FROM T WHERE ID = 1"))


def test_index_range_scan_results(db):
    assert sorted(q(db, "SELECT ID FROM T WHERE NAME = 'apple' AND QTY > 40")) == [(7,), (10,)]
    assert sorted(q(db, "SELECT ID FROM T WHERE NAME = 'apple' AND QTY >= 40 AND QTY < 100")) == [(4,), (7,)]
    assert q(db, "SELECT ID FROM T WHERE NAME = ?", None) == []
    # a value out of the column's range falls back to a scan, still correct
    assert q(db, "SELECT ID FROM T WHERE NAME = 'pear' AND QTY > 9999999999") == []


# ---------------------------------------------------------------- DML

def test_insert_defaults_and_constraints(db):
    assert q(db, "INSERT INTO T (ID) VALUES (?)", 50) == [(1,)]
    assert q(db, "SELECT QTY, REQ, NAME FROM T WHERE ID = 50") == [(7, 0, None)]
    with pytest.raises(ConstraintError):
        q(db, "INSERT INTO T (ID) VALUES (50)")
    with pytest.raises(ConstraintError, match="NOT NULL"):
        q(db, "INSERT INTO NOPK (B) VALUES (1)")
    with pytest.raises(ConstraintError, match="NOT NULL"):
        q(db, "INSERT INTO T (ID, REQ) VALUES (51, NULL)")
    with pytest.raises(ValueOutOfRangeError):
        q(db, "INSERT INTO T (ID, NAME) VALUES (52, ?)", "x" * 11)
    with pytest.raises(ValueOutOfRangeError):
        q(db, "INSERT INTO T (ID, REQ) VALUES (53, 40000)")
    with pytest.raises(TypeMismatchError):
        q(db, "INSERT INTO T (ID, QTY) VALUES (54, ?)", "abc")
    with pytest.raises(ConstraintError):
        q(db, "INSERT INTO R VALUES (9, 'x', 'u1')")       # unique index
    q(db, "INSERT INTO R VALUES (9, 'x', NULL)")
    q(db, "INSERT INTO R VALUES (10, 'y', NULL)")           # NULL keys never conflict
    q(db, "INSERT INTO T (ID, TS) VALUES (60, '2020-01-01 00:00:01')")
    assert q(db, "SELECT TS FROM T WHERE ID = 60") == [(1577836801000000,)]
    assert q(db, "SELECT ID FROM T WHERE TS > '2019-12-31'") == [(60,)]


def test_mispartitioned_insert(db):
    stmt = plan_statement(db.catalog, "INSERT INTO T (ID) VALUES (?)")
    owner = db.partition_for("T", 77)
    other = (owner + 1) % db.nparts
    with pytest.raises(MispartitionedError):
        stmt.run_fragment(db.ctx(other), [77])
    assert stmt.run_fragment(db.ctx(owner), [77]) == ("count", 1)


def test_upsert(db):
    assert q(db, "UPSERT INTO R VALUES (1, 'new', 'u1')") == [(1,)]
    assert q(db, "UPSERT INTO R VALUES (5, 'five', 'u5')") == [(1,)]
    assert sorted(q(db, "SELECT K, LABEL FROM R")) == [(1, "new"), (2, "label2"), (3, "label3"), (5, "five")]
    q(db, "UPSERT INTO T (ID, NAME) VALUES (1, 'kiwi')")
    assert q(db, "SELECT ID, NAME, QTY FROM T WHERE ID = 1") == [(1, "kiwi", 10)]
    with pytest.raises(PlanningError, match="primary key"):
        plan_statement(db.catalog, "UPSERT INTO NOPK VALUES (1, 2)")


def test_update_delete_truncate(db):
    assert q(db, "UPDATE T SET QTY = QTY + 1, NAME = 'x' WHERE ID <= ?", 3) == [(3,)]
    assert sorted(q(db, "SELECT ID, QTY, NAME FROM T WHERE NAME = 'x'")) == [(1, 11, "x"), (2, 21, "x"), (3, 31, "x")]
    assert q(db, "UPDATE T SET QTY = NULL WHERE ID = 4") == [(1,)]
    with pytest.raises(ConstraintError):
        q(db, "UPDATE T SET REQ = NULL WHERE ID = 4")
    with pytest.raises(PlanningError, match="partitioning column"):
        plan_statement(db.catalog, "UPDATE T SET ID = ID + 1")
    with pytest.raises(ConstraintError):
        q(db, "UPDATE R SET U = 'u1'")
    assert q(db, "DELETE FROM T WHERE NAME = 'x' OR ID = 10") == [(4,)]
    assert q(db, "SELECT COUNT(*) FROM T") == [(6,)]
    assert q(db, "DELETE FROM R WHERE K = 2") == [(1,)]
    assert q(db, "TRUNCATE TABLE T") == [(6,)]
    assert q(db, "SELECT COUNT(*) FROM T") == [(0,)]
    assert q(db, "DELETE FROM R") == [(2,)]


def test_insert_select(cluster):
    c = cluster(catalog(), 2)
    for k in range(3):
        c.run("INSERT INTO R VALUES (?, ?, NULL)", [k, f"l{k}"])
    cat = c.catalog
    cat.tables["R2"] = Table("R2", 30, [Column("K", V.INTEGER, nullable=False), Column("LABEL", V.STRING, 20),
                                        Column("U", V.STRING, 5)])
    assert q(c, "INSERT INTO R2 SELECT * FROM R WHERE K > 0") == [(2,)]
    assert sorted(q(c, "SELECT K FROM R2")) == [(1,), (2,)]


def test_views_are_read_only_and_maintained(db):
    with pytest.raises(SQLError, match="read-only"):
        plan_statement(db.catalog, "INSERT INTO V_NAME VALUES ('a', 1, 1)")
    with pytest.raises(SQLError, match="read-only"):
        plan_statement(db.catalog, "DELETE FROM V_NAME")
    rows = sorted(q(db, "SELECT NAME, SUM(CNT), SUM(TOTAL) FROM V_NAME GROUP BY NAME"), key=str)
    assert rows == sorted([("apple", 4, 220), ("pear", 3, 150), (None, 3, 180)], key=str)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("sql, err, msg", [
    ("SELECT * FROM NOPE", PlanningError, "NOPE"),
    ("SELECT NOPE FROM T", PlanningError, "NOPE"),
    ("SELECT Z.ID FROM T", PlanningError, "Z"),
    ("SELECT ID FROM T, R WHERE K = 1 AND ID = K AND LABEL = NAME AND U = 'x' AND X = 1", PlanningError, "X"),
    ("SELECT ID FROM T JOIN U ON T.ID = U.ID", PlanningError, "ambiguous"),
    ("SELECT NAME, COUNT(*) FROM T", PlanningError, "GROUP BY"),
    ("SELECT ID FROM T WHERE COUNT(*) > 1", PlanningError, "HAVING"),
    ("SELECT ID FROM T WHERE NAME > 3", PlanningError, "incompatible"),
    ("SELECT NAME + 1 FROM T", PlanningError, "numeric"),
    ("SELECT ID FROM T LEFT JOIN R ON T.ID = R.K", PlanningError, "inner joins"),
    ("SELECT ID FROM T WHERE ID IN (SELECT K FROM R)", PlanningError, "subquer"),
    ("SELECT ID FROM T UNION SELECT K FROM R", PlanningError, "UNION"),
    ("SELECT FOO(ID) FROM T", PlanningError, "FOO"),
    ("INSERT INTO T (ID, NOPE) VALUES (1, 2)", PlanningError, "NOPE"),
    ("INSERT INTO T (ID, NAME) VALUES (1)", PlanningError, "values"),
    ("INSERT INTO T (ID, NAME) VALUES (1, 2), (3, 4)", PlanningError, "one row"),
    ("INSERT INTO T (ID, PRICE) VALUES (1, NOW)", PlanningError, "incompatible"),
    ("UPDATE T SET NOPE = 1", PlanningError, "NOPE"),
    ("DELETE FROM NOPE", PlanningError, "NOPE"),
    ("SELECT ID FROM T ORDER BY 9", PlanningError, "position"),
    ("SELECT ID FROM T LIMIT -1", PlanningError, "LIMIT"),
    ("SELEC ID FROM T", SQLError, "syntax"),
    ("SELECT 1; SELECT 2", SQLError, "one SQL statement"),
    ("", SQLError, "empty"),
    ("CREATE TABLE X (A INT)", PlanningError, "unsupported"),
])
def test_bad_statements(sql, err, msg):
    with pytest.raises(err, match=msg):
        plan_statement(catalog(), sql)


def test_wrong_parameter_count_and_types(db):
    stmt = plan_statement(db.catalog, "SELECT * FROM T WHERE ID = ?")
    with pytest.raises(SQLError, match="expects 1 parameter"):
        stmt.run_fragment(db.ctx(0), [])
    with pytest.raises(SQLError, match="expects 1 parameter"):
        stmt.run_fragment(db.ctx(0), [1, 2])
    with pytest.raises(TypeMismatchError):
        stmt.run_fragment(db.ctx(0), ["abc"])
    with pytest.raises(SQLError, match="LIMIT"):
        q(db, "SELECT ID FROM T LIMIT ?", -1)


def test_with_ddl_compiled_catalog(cluster):
    from voltdb_py.catalog.ddl import compile_ddl
    cat = compile_ddl(Catalog(), """
        CREATE TABLE E (ID INTEGER NOT NULL, G VARCHAR(4), Q INTEGER, AT TIMESTAMP DEFAULT NOW,
                        PRIMARY KEY (ID));
        PARTITION TABLE E ON COLUMN ID;
        CREATE VIEW VE (G, CNT, TOTAL) AS SELECT G, COUNT(*), SUM(Q) FROM E GROUP BY G;""")
    c = cluster(cat, 2)
    for i in range(6):
        c.run("INSERT INTO E (ID, G, Q) VALUES (?, ?, ?)", [i, "ab"[i % 2], i])
    assert q(c, "SELECT AT FROM E WHERE ID = 1") == [(c.now,)]
    assert sorted(q(c, "SELECT G, SUM(CNT), SUM(TOTAL) FROM VE GROUP BY G")) == [("a", 3, 6), ("b", 3, 9)]
    q(c, "DELETE FROM E WHERE Q < 2")
    assert sorted(q(c, "SELECT G, SUM(CNT), SUM(TOTAL) FROM VE GROUP BY G")) == [("a", 2, 6), ("b", 2, 8)]
    assert "PRIMARY KEY LOOKUP" in explain(plan_statement(cat, "SELECT * FROM E WHERE ID = ?"))
