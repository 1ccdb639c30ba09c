# SPDX-License-Identifier: AGPL-3.0-or-later
"""The DDL compiler: statements, VoltDB's schema rules, errors, atomicity, scripts."""

from __future__ import annotations

import decimal
import pathlib
import warnings

import pytest
from hypothesis import given, strategies as st

from voltdb_py.catalog import Catalog
from voltdb_py.catalog.ddl import (
    MAX_VALUE_LENGTH, VoltDBCompatibilityWarning, catalog_changes, compile_ddl, split_script,
    split_statements,
)
from voltdb_py.catalog.serialize import catalog_to_bytes
from voltdb_py.errors import CatalogError, DDLError
from voltdb_py.types import VoltType

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOTER_DDL = ROOT / "python" / "voltdb_py" / "examples" / "voter" / "ddl.sql"
ALL_FEATURES = ROOT / "tests" / "data" / "all_features.sql"


def loader(path):
    """Stands in for the integrator's class loader: voter.* and test.* classes exist."""
    if path.startswith(("voter.", "test.")):
        return type(path.rpartition(".")[2], (), {})
    raise ImportError(f"no class {path}")


def ddl(text, cat=None):
    return compile_ddl(cat or Catalog(), text, class_loader=loader)


def fails(text, exc, *fragments, cat=None):
    with pytest.raises(exc) as ei:
        ddl(text, cat)
    msg = str(ei.value)
    for f in fragments:
        assert f.lower() in msg.lower(), msg
    return msg


# ------------------------------------------------------------------ splitting


def test_split_statements_quotes_and_comments():
    text = """CREATE TABLE a (x VARCHAR(5) DEFAULT 'a;b');  -- c;omment
    /* block ; comment */ CREATE TABLE "we;ird" (y INT);
    ;;
    DROP TABLE a"""
    sts = split_statements(text)
    assert [s.text.split()[0] for s in sts] == ["CREATE", "CREATE", "DROP"]
    assert "'a;b'" in sts[0].text
    assert '"we;ird"' in sts[1].text
    assert sts[2].text == "DROP TABLE a"
    assert sts[0].line == 1 and sts[1].line == 2 and sts[2].line == 4


def test_split_statements_unterminated():
    with pytest.raises(DDLError, match="unterminated"):
        split_statements("CREATE TABLE a (x VARCHAR DEFAULT 'oops);")
    with pytest.raises(DDLError, match="unterminated"):
        split_statements("CREATE TABLE a (x INT); /* never closed")


def test_split_script_directives():
    text = """-- header
file -inlinebatch END_OF_BATCH
CREATE TABLE t (a INT NOT NULL);
PARTITION TABLE t ON COLUMN a;
END_OF_BATCH
LOAD CLASSES procs.jar;
remove classes foo.*;
file other.sql
file -batch more.sql
CREATE PROCEDURE FROM CLASS voter.Vote;
"""
    items = split_script(text)
    assert [k for k, _ in items] == ["batch", "load_classes", "remove_classes", "file",
                                     "file_batch", "sql"]
    assert "PARTITION TABLE t" in items[0][1] and "END_OF_BATCH" not in items[0][1]
    assert items[1][1] == "procs.jar"
    assert items[2][1] == "foo.*"
    assert items[3][1] == "other.sql" and items[4][1] == "more.sql"
    assert items[5][1] == "CREATE PROCEDURE FROM CLASS voter.Vote"


def test_split_script_unclosed_batch():
    with pytest.raises(DDLError, match="END_X"):
        split_script("file -inlinebatch END_X\nCREATE TABLE t (a INT);\n")


def test_directive_word_inside_statement_is_not_a_directive():
    items = split_script("CREATE TABLE file (a INT);\nCREATE TABLE load (b INT);")
    assert [k for k, _ in items] == ["sql", "sql"]


@given(st.lists(st.text(alphabet="ab;'\"-/* \n", max_size=12), max_size=5))
def test_split_statements_never_splits_inside_string_literals(parts):
    # Each statement is SELECT '<literal>' with arbitrary characters (quotes doubled).
    lits = [p.replace("'", "''") for p in parts]
    text = ";\n".join(f"SELECT '{lit}'" for lit in lits)
    sts = split_statements(text)
    assert [s.text for s in sts] == [f"SELECT '{lit}'" for lit in lits]


# ------------------------------------------------------------------ CREATE TABLE


def test_create_table_types_and_defaults():
    cat = ddl("""CREATE TABLE t (
        a TINYINT DEFAULT 5, b SMALLINT NOT NULL, c INTEGER, d INT, e BIGINT DEFAULT -9,
        f FLOAT DEFAULT 1.5, g DECIMAL DEFAULT 2.25, h VARCHAR(10) DEFAULT 'hi',
        i VARCHAR(7 BYTES), j VARBINARY(4) DEFAULT X'0a0B', k TIMESTAMP DEFAULT NOW,
        l TIMESTAMP DEFAULT '2020-01-02 03:04:05', m VARCHAR, n TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        o INTEGER DEFAULT NULL)""")
    t = cat.tables["T"]
    types = [c.vtype for c in t.columns]
    assert types == [VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER, VoltType.INTEGER,
                     VoltType.BIGINT, VoltType.FLOAT, VoltType.DECIMAL, VoltType.STRING,
                     VoltType.STRING, VoltType.VARBINARY, VoltType.TIMESTAMP,
                     VoltType.TIMESTAMP, VoltType.STRING, VoltType.TIMESTAMP, VoltType.INTEGER]
    c = {c.name: c for c in t.columns}
    assert c["A"].has_default and c["A"].default == 5
    assert not c["C"].has_default
    assert c["B"].nullable is False and c["A"].nullable is True
    assert c["E"].default == -9
    assert c["F"].default == 1.5 and isinstance(c["F"].default, float)
    assert c["G"].default == decimal.Decimal("2.25") and c["G"].default.as_tuple().exponent == -12
    assert c["H"].size == 10 and c["H"].default == "hi" and not c["H"].in_bytes
    assert c["I"].size == 7 and c["I"].in_bytes
    assert c["J"].default == b"\x0a\x0b"
    assert c["K"].default_now and c["K"].has_default and c["K"].default is None
    assert c["N"].default_now
    assert c["L"].default == 1577934245000000
    assert c["M"].size == MAX_VALUE_LENGTH
    assert c["O"].has_default and c["O"].default is None
    assert t.primary_key is None and t.indexes == [] and not t.partitioned
    assert cat.version == 1 and t.table_id == 1 and cat.next_id == 2


def test_names_are_folded_and_quoted_names_work():
    cat = ddl('create table MixedCase ("Quoted" int, plain int)')
    t = cat.tables["MIXEDCASE"]
    assert [c.name for c in t.columns] == ["QUOTED", "PLAIN"]


@pytest.mark.parametrize("text,fragments", [
    ("CREATE TABLE t (a VARCHAR(0))", ["column A", "size 0"]),
    (f"CREATE TABLE t (a VARCHAR({MAX_VALUE_LENGTH + 1}))", ["column A", "1048577"]),
    ("CREATE TABLE t (a VARBINARY(10 BYTES))", ["column A", "BYTES"]),
    ("CREATE TABLE t (a BLOB)", ["column A", "unknown type"]),
    ("CREATE TABLE t (a GEOGRAPHY)", ["column A", "not supported"]),
    ("CREATE TABLE t (a INTEGER(5))", ["column A", "takes no size"]),
    ("CREATE TABLE t (a DECIMAL(10,2))", ["column A", "DECIMAL(10,2)"]),
    ("CREATE TABLE t (a TINYINT DEFAULT 300)", ["DEFAULT of column A", "out of range"]),
    ("CREATE TABLE t (a INTEGER DEFAULT 'x')", ["DEFAULT of column A"]),
    ("CREATE TABLE t (a VARCHAR(2) DEFAULT 'abc')", ["DEFAULT of column A"]),
    ("CREATE TABLE t (a INTEGER DEFAULT NOW)", ["column A", "TIMESTAMP"]),
    ("CREATE TABLE t (a INTEGER NOT NULL DEFAULT NULL)", ["column A", "NOT NULL"]),
    ("CREATE TABLE t (a INTEGER NULL NOT NULL)", ["column A", "NULL"]),
    ("CREATE TABLE t (a INTEGER, a BIGINT)", ["two columns named A"]),
    ("CREATE TABLE t ()", ["table T"]),
    ("CREATE TABLE t (a INTEGER, PRIMARY KEY (b))", ["column B", "table T"]),
    ("CREATE TABLE t (a INTEGER PRIMARY KEY, PRIMARY KEY (a))", ["more than one PRIMARY KEY"]),
    ("CREATE TABLE t (a INTEGER, UNIQUE (a, a))", ["twice"]),
    ("CREATE TABLE t (a INTEGER) garbage", ["garbage"]),
    ("CREATE TABLE t (a INTEGER", ["expected"]),
])
def test_create_table_errors(text, fragments):
    exc = CatalogError if any("column B" in f or "two columns" in f for f in fragments) \
        else DDLError
    msg = fails(text, exc, *fragments)
    assert "statement 1" in msg and "CREATE TABLE" in msg


def test_create_table_twice_is_catalog_error():
    cat = ddl("CREATE TABLE t (a INT)")
    fails("CREATE TABLE T (b INT)", CatalogError, "table T already exists", cat=cat)


def test_constraints_and_generated_index_names():
    cat = ddl("""CREATE TABLE t (
        a INTEGER PRIMARY KEY, b INTEGER UNIQUE, c INTEGER, d INTEGER,
        CONSTRAINT uq_cd UNIQUE (c, d), UNIQUE (d), UNIQUE (d));
        CREATE TABLE u (x INT, y INT, CONSTRAINT pk_u PRIMARY KEY (y, x));""")
    t = cat.tables["T"]
    assert t.primary_key == ["A"] and t.column("A").nullable is False
    by = {ix.constraint: ix for ix in t.indexes}
    pk = by["VOLTDB_AUTOGEN_IDX_PK_T_A"]
    assert pk.primary_key and pk.unique and pk.from_constraint and pk.columns == ["A"]
    assert by["VOLTDB_AUTOGEN_IDX_CT_T_B"].unique and not by["VOLTDB_AUTOGEN_IDX_CT_T_B"].primary_key
    assert by["UQ_CD"].columns == ["C", "D"] and by["UQ_CD"].name.endswith("UQ_CD")
    # two unnamed constraints on the same columns get distinct names
    assert by["VOLTDB_AUTOGEN_IDX_CT_T_D"].name != by["VOLTDB_AUTOGEN_IDX_CT_T_D_2"].name
    u = cat.tables["U"]
    assert u.primary_key == ["Y", "X"] and all(not c.nullable for c in u.columns)
    ids = [ix.index_id for x in cat.tables.values() for ix in x.indexes] + \
          [x.table_id for x in cat.tables.values()]
    assert len(ids) == len(set(ids)) and max(ids) < cat.next_id


def test_assumeunique_on_replicated_table_is_refused():
    fails("CREATE TABLE t (a INT ASSUMEUNIQUE)", DDLError, "ASSUMEUNIQUE", "replicated", "T")
    # ... and fine once the table is partitioned, in any statement order
    cat = ddl("CREATE TABLE t (a INT ASSUMEUNIQUE, p INT NOT NULL);"
              "PARTITION TABLE t ON COLUMN p;")
    assert cat.tables["T"].indexes[0].assume_unique


# ------------------------------------------------------------------ PARTITION TABLE


def test_partition_table():
    cat = ddl("CREATE TABLE t (a INT NOT NULL, b VARCHAR(4) NOT NULL, PRIMARY KEY (a, b));"
              "PARTITION TABLE t ON COLUMN b;")
    t = cat.tables["T"]
    assert t.partitioned and t.partition_column == "B"


@pytest.mark.parametrize("text,exc,fragments", [
    ("CREATE TABLE t (a INT); PARTITION TABLE t ON COLUMN a;", DDLError,
     ["T.A", "nullable", "NOT NULL"]),
    ("CREATE TABLE t (a FLOAT NOT NULL); PARTITION TABLE t ON COLUMN a;", DDLError,
     ["partition column A", "FLOAT"]),
    ("CREATE TABLE t (a TIMESTAMP NOT NULL); PARTITION TABLE t ON COLUMN a;", DDLError,
     ["TIMESTAMP"]),
    ("PARTITION TABLE nope ON COLUMN a;", CatalogError, ["table NOPE does not exist"]),
    ("CREATE TABLE t (a INT NOT NULL); PARTITION TABLE t ON COLUMN z;", CatalogError,
     ["column Z", "table T"]),
    ("CREATE TABLE t (a INT NOT NULL, b INT NOT NULL); PARTITION TABLE t ON COLUMN a;"
     "PARTITION TABLE t ON COLUMN b;", DDLError, ["already partitioned"]),
    ("CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, PRIMARY KEY (b));"
     "PARTITION TABLE t ON COLUMN a;", DDLError, ["PRIMARY KEY", "does not include", "A"]),
    ("CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, CONSTRAINT ub UNIQUE (b));"
     "PARTITION TABLE t ON COLUMN a;", DDLError, ["UNIQUE index", "UB", "partition column A"]),
    ("CREATE TABLE t (a INT NOT NULL, b INT);"
     "PARTITION TABLE t ON COLUMN a; CREATE UNIQUE INDEX ix_b ON t (b);", DDLError,
     ["IX_B", "partition column A"]),
    # order does not matter: the rule is checked at the end of the batch
    ("CREATE TABLE t (a INT NOT NULL, b INT); CREATE UNIQUE INDEX ix_b ON t (b);"
     "PARTITION TABLE t ON COLUMN a;", DDLError, ["IX_B", "partition column A"]),
])
def test_partition_errors(text, exc, fragments):
    fails(text, exc, *fragments)


def test_partition_unique_rules_allowed_cases():
    cat = ddl("""CREATE TABLE t (a INT NOT NULL, b INT, c INT, PRIMARY KEY (b, a));
        CREATE UNIQUE INDEX ix_ab ON t (b, a);
        CREATE ASSUMEUNIQUE INDEX ix_c ON t (c);
        CREATE INDEX ix_cc ON t (c);
        PARTITION TABLE t ON COLUMN a;""")
    t = cat.tables["T"]
    assert {ix.name for ix in t.indexes} >= {"IX_AB", "IX_C", "IX_CC"}


def test_partition_column_nullable_is_fixed_by_pk():
    cat = ddl("CREATE TABLE t (a INT PRIMARY KEY); PARTITION TABLE t ON COLUMN a;")
    assert cat.tables["T"].column("A").nullable is False


# ------------------------------------------------------------------ indexes and drops


def test_create_and_drop_index():
    cat = ddl("CREATE TABLE t (a INT, b INT); CREATE INDEX ix ON t (b, a);"
              "CREATE UNIQUE INDEX ux ON t (a);")
    ix = {i.name: i for i in cat.tables["T"].indexes}
    assert ix["IX"].columns == ["B", "A"] and not ix["IX"].unique
    assert ix["UX"].unique and not ix["UX"].from_constraint
    cat2 = ddl("DROP INDEX ix; DROP INDEX nope IF EXISTS; DROP INDEX IF EXISTS nope2", cat)
    assert [i.name for i in cat2.tables["T"].indexes] == ["UX"]
    assert [i.name for i in cat.tables["T"].indexes] == ["IX", "UX"]  # input unchanged
    fails("DROP INDEX nope", CatalogError, "index NOPE does not exist", cat=cat)
    fails("CREATE INDEX ix ON t (a)", CatalogError, "index IX already exists", cat=cat)
    fails("CREATE INDEX iz ON t (zz)", CatalogError, "column ZZ", cat=cat)
    fails("CREATE INDEX iz ON t (a + 1)", DDLError, "only plain column names", cat=cat)
    fails("CREATE INDEX iz ON t (a) WHERE a > 0", DDLError, "partial", cat=cat)
    fails("CREATE INDEX iz ON nope (a)", CatalogError, "NOPE", cat=cat)


def test_drop_constraint_index_is_refused():
    cat = ddl("CREATE TABLE t (a INT PRIMARY KEY)")
    name = cat.tables["T"].indexes[0].name
    fails(f"DROP INDEX {name}", DDLError, "DROP CONSTRAINT", cat=cat)


def test_drop_table_view_procedure():
    cat = ddl("""CREATE TABLE t (a INT NOT NULL, b INT);
        CREATE VIEW v AS SELECT a, COUNT(*) AS n FROM t GROUP BY a;
        CREATE PROCEDURE p AS SELECT * FROM t;""")
    fails("DROP TABLE t", DDLError, "V", "CASCADE", cat=cat)
    fails("DROP VIEW t", DDLError, "is a table", cat=cat)
    fails("DROP TABLE v", DDLError, "is a view", cat=cat)
    fails("DROP PROCEDURE q", CatalogError, "procedure q does not exist", cat=cat)
    c2 = ddl("DROP TABLE t CASCADE; DROP PROCEDURE P; DROP TABLE nope IF EXISTS;"
             "DROP VIEW IF EXISTS nope; DROP PROCEDURE nope IF EXISTS", cat)
    assert c2.tables == {} and c2.procedures == {}
    c3 = ddl("DROP VIEW v; DROP TABLE t;", cat)
    assert c3.tables == {}
    fails("DROP TABLE nope", CatalogError, "NOPE does not exist", cat=cat)
    fails("DROP SEQUENCE s", DDLError, "not supported", cat=cat)


def test_ids_are_never_reused():
    cat = ddl("CREATE TABLE t (a INT PRIMARY KEY)")
    used = {cat.tables["T"].table_id, cat.tables["T"].indexes[0].index_id}
    cat = ddl("DROP TABLE t; CREATE TABLE t (a INT PRIMARY KEY)", cat)
    new = {cat.tables["T"].table_id, cat.tables["T"].indexes[0].index_id}
    assert not used & new


# ------------------------------------------------------------------ views


def test_view_types_and_keys():
    cat = ddl("""CREATE TABLE s (g1 VARCHAR(9) NOT NULL, g2 SMALLINT, i TINYINT, f FLOAT,
                                 d DECIMAL, ts TIMESTAMP, p BIGINT NOT NULL);
        PARTITION TABLE s ON COLUMN p;
        CREATE VIEW v (k1, k2, n, si, sf, sd, mi, mx, cnt)
          AS SELECT g1, g2, COUNT(*), SUM(i), SUM(f), SUM(d), MIN(ts), MAX(g1), COUNT(f)
             FROM s GROUP BY g1, g2;
        CREATE VIEW w AS SELECT s.p, COUNT(*) AS n, SUM(s.i) FROM s GROUP BY s.p;""")
    v = cat.tables["V"]
    got = [(c.name, c.vtype, c.nullable) for c in v.columns]
    assert got == [("K1", VoltType.STRING, False), ("K2", VoltType.SMALLINT, True),
                   ("N", VoltType.BIGINT, False), ("SI", VoltType.BIGINT, True),
                   ("SF", VoltType.FLOAT, True), ("SD", VoltType.DECIMAL, True),
                   ("MI", VoltType.TIMESTAMP, True), ("MX", VoltType.STRING, True),
                   ("CNT", VoltType.BIGINT, False)]
    assert v.column("K1").size == 9 and v.column("MX").size == 9
    assert v.primary_key == ["K1", "K2"]
    assert v.view.source == "S" and v.view.group_by == ["G1", "G2"]
    assert v.view.aggregates == [("COUNT", None), ("SUM", "I"), ("SUM", "F"), ("SUM", "D"),
                                 ("MIN", "TS"), ("MAX", "G1"), ("COUNT", "F")]
    assert v.partitioned and v.partition_column is None
    (ix,) = v.indexes
    assert ix.unique and ix.primary_key and ix.columns == ["K1", "K2"]
    w = cat.tables["W"]
    assert [c.name for c in w.columns] == ["P", "N", "C3"]
    assert w.partitioned and w.partition_column == "P" and w.primary_key == ["P"]


def test_view_partitioning_follows_source_regardless_of_order():
    cat = ddl("CREATE TABLE s (p INT NOT NULL, x INT);"
              "CREATE VIEW v (pp, n) AS SELECT p, COUNT(*) FROM s GROUP BY p;"
              "PARTITION TABLE s ON COLUMN p;")
    assert cat.tables["V"].partitioned and cat.tables["V"].partition_column == "PP"
    rep = ddl("CREATE TABLE s (p INT NOT NULL);"
              "CREATE VIEW v AS SELECT p, COUNT(*) AS n FROM s GROUP BY p;")
    assert not rep.tables["V"].partitioned and rep.tables["V"].partition_column is None


def test_view_where_is_recorded():
    cat = ddl("CREATE TABLE s (a INT, b INT);"
              "CREATE VIEW v AS SELECT a, COUNT(*) AS n FROM s WHERE b > 3 AND a IS NOT NULL GROUP BY a;")
    assert cat.tables["V"].view.where == "b > 3 AND NOT a IS NULL"


@pytest.mark.parametrize("body,exc,fragments", [
    ("SELECT a, SUM(b) AS x FROM s GROUP BY a", DDLError, ["COUNT(*)"]),
    ("SELECT a, b, COUNT(*) AS n FROM s GROUP BY a", DDLError, ["B", "not in GROUP BY"]),
    ("SELECT COUNT(*) AS n FROM s GROUP BY a", DDLError, ["must be selected"]),
    ("SELECT COUNT(*) AS n FROM s", DDLError, ["GROUP BY"]),
    ("SELECT a, COUNT(*) AS n FROM s JOIN t ON s.a = t.a GROUP BY a", DDLError, ["JOINS"]),
    ("SELECT a, COUNT(*) AS n FROM s, t GROUP BY a", DDLError, ["JOINS"]),
    ("SELECT a, COUNT(*) AS n FROM (SELECT a FROM s) q GROUP BY a", DDLError, ["one table"]),
    ("SELECT a, COUNT(*) AS n FROM w GROUP BY a", DDLError, ["views of views"]),
    ("SELECT a, COUNT(*) AS n FROM nope GROUP BY a", CatalogError, ["NOPE"]),
    ("SELECT a, COUNT(*) AS n FROM s GROUP BY a + 1", DDLError, ["GROUP BY item"]),
    ("SELECT a, COUNT(*) AS n, SUM(b + 1) AS z FROM s GROUP BY a", DDLError, ["SUM"]),
    ("SELECT a, COUNT(*) AS n, AVG(b) AS z FROM s GROUP BY a", DDLError, ["AVG"]),
    ("SELECT a, COUNT(*) AS n, SUM(v) AS z FROM s GROUP BY a", DDLError, ["SUM of VARCHAR"]),
    ("SELECT a, COUNT(*) AS n, COUNT(DISTINCT b) AS z FROM s GROUP BY a", DDLError,
     ["DISTINCT"]),
    ("SELECT a, COUNT(*) AS a FROM s GROUP BY a", CatalogError, ["two columns named A"]),
    ("SELECT a, COUNT(*) AS n FROM s GROUP BY a HAVING COUNT(*) > 1", DDLError, ["HAVING"]),
    ("SELECT a, COUNT(*) AS n FROM s WHERE zz = 1 GROUP BY a", CatalogError, ["ZZ"]),
    ("SELECT a, COUNT(*) AS n FROM s GROUP BY a ORDER BY a", DDLError, ["ORDER"]),
    ("SELECT a, COUNT(*) AS n FROM s GROUP BY q.a", DDLError, ["unknown table Q"]),
    ("SELEKT a FROM s", DDLError, ["does not parse"]),
    ("DELETE FROM s", DDLError, ["one SELECT"]),
])
def test_view_errors(body, exc, fragments):
    base = ddl("CREATE TABLE s (a INT, b INT, v VARCHAR(3)); CREATE TABLE t (a INT);"
               "CREATE VIEW w AS SELECT a, COUNT(*) AS n FROM s GROUP BY a;")
    fails(f"CREATE VIEW v2 AS {body}", exc, "view V2", *fragments, cat=base)


def test_view_column_list_length_must_match():
    fails("CREATE TABLE s (a INT); CREATE VIEW v (x) AS SELECT a, COUNT(*) FROM s GROUP BY a",
          DDLError, "1 column names for 2")


# ------------------------------------------------------------------ procedures


def test_procedures_all_forms():
    cat = ddl("""CREATE TABLE t (id BIGINT NOT NULL, v VARCHAR(9));
        PARTITION TABLE t ON COLUMN id;
        CREATE PROCEDURE GetT PARTITION ON TABLE t COLUMN id AS SELECT v FROM t WHERE id = ?;
        CREATE PROCEDURE SetT PARTITION ON TABLE t COLUMN id PARAMETER 1
            AS UPDATE t SET v = ? WHERE id = ?;
        CREATE PROCEDURE AllT AS SELECT COUNT(*) FROM t;
        CREATE PROCEDURE Up AS UPSERT INTO t VALUES (?, ?);
        CREATE PROCEDURE Top AS (SELECT TOP 3 * FROM t);
        CREATE PROCEDURE FROM CLASS test.pkg.Loaded;
        CREATE PROCEDURE PARTITION ON TABLE t COLUMN id PARAMETER 2 FROM CLASS test.Other;
        CREATE PROCEDURE Later AS DELETE FROM t WHERE id = ?;
        PARTITION PROCEDURE later ON TABLE t COLUMN id;""")
    p = cat.procedures
    assert set(p) == {"GetT", "SetT", "AllT", "Loaded", "Other", "Later", "Up", "Top"}
    assert p["Up"].sql == "UPSERT INTO t VALUES (?, ?)"
    assert p["GetT"].sql == "SELECT v FROM t WHERE id = ?" and p["GetT"].single_partition
    assert (p["GetT"].partition_table, p["GetT"].partition_column,
            p["GetT"].partition_parameter) == ("T", "ID", 0)
    assert p["SetT"].partition_parameter == 1
    assert not p["AllT"].single_partition and p["AllT"].class_path is None
    assert p["Loaded"].class_path == "test.pkg.Loaded" and p["Loaded"].sql is None
    assert p["Other"].partition_parameter == 2
    assert p["Later"].partition_table == "T"
    assert "test.pkg" in cat.classes and "test" in cat.classes


@pytest.mark.parametrize("text,exc,fragments", [
    ("CREATE PROCEDURE FROM CLASS missing.Cls", CatalogError,
     ["procedure Cls", "missing.Cls", "cannot be loaded"]),
    ("CREATE PROCEDURE p PARTITION ON TABLE r COLUMN id AS SELECT 1", DDLError,
     ["procedure p", "not a partitioned table"]),
    ("CREATE PROCEDURE p PARTITION ON TABLE t COLUMN v AS SELECT 1", DDLError,
     ["procedure p", "partition column of T is ID"]),
    ("CREATE PROCEDURE p PARTITION ON TABLE nope COLUMN v AS SELECT 1", CatalogError,
     ["procedure p", "NOPE"]),
    ("CREATE PROCEDURE p AS SELECT 1; CREATE PROCEDURE P AS SELECT 2", CatalogError,
     ["procedure p already exists"]),
    ("CREATE PROCEDURE p AS", DDLError, ["no SQL statement"]),
    ("CREATE PROCEDURE p AS FROBNICATE t", DDLError, ["procedure p", "FROBNICATE"]),
    ("CREATE PROCEDURE p AS CREATE TABLE x (a INT)", DDLError, ["procedure p", "CREATE"]),
    ("CREATE PROCEDURE p AS BEGIN SELECT 1", DDLError, ["multi-statement"]),
    ("CREATE PROCEDURE AS SELECT 1", DDLError, ["needs a procedure name"]),
    ("CREATE PROCEDURE p", DDLError, ["AS <sql> or FROM CLASS"]),
    ("PARTITION PROCEDURE nope ON TABLE t COLUMN id", CatalogError, ["procedure nope"]),
    ("CREATE PROCEDURE p PARTITION ON TABLE t COLUMN id AS SELECT 1;"
     "PARTITION PROCEDURE p ON TABLE t COLUMN id", DDLError, ["already partitioned"]),
    ("CREATE PROCEDURE Foo FROM CLASS test.Bar", DDLError, ["named after its class"]),
])
def test_procedure_errors(text, exc, fragments):
    base = ddl("CREATE TABLE t (id INT NOT NULL, v INT); PARTITION TABLE t ON COLUMN id;"
               "CREATE TABLE r (id INT NOT NULL);")
    fails(text, exc, *fragments, cat=base)


def test_dropping_partition_table_of_procedure_fails():
    base = ddl("CREATE TABLE t (id INT NOT NULL); PARTITION TABLE t ON COLUMN id;"
               "CREATE PROCEDURE p PARTITION ON TABLE t COLUMN id AS SELECT * FROM t;")
    fails("DROP TABLE t", CatalogError, "procedure p", "T", cat=base)


def test_default_class_loader_imports_python_classes():
    cat = compile_ddl(Catalog(), "CREATE PROCEDURE FROM CLASS collections.OrderedDict")
    assert cat.procedures["OrderedDict"].class_path == "collections.OrderedDict"
    with pytest.raises(CatalogError, match="NoSuchThing"):
        compile_ddl(Catalog(), "CREATE PROCEDURE FROM CLASS collections.NoSuchThing")


# ------------------------------------------------------------------ ALTER TABLE


def test_alter_add_and_drop_column():
    cat = ddl("""CREATE TABLE t (a INT NOT NULL, b INT, c INT, PRIMARY KEY (a));
        CREATE INDEX ix_b ON t (b);
        PARTITION TABLE t ON COLUMN a;""")
    old = cat.tables["T"]
    cat2 = ddl("ALTER TABLE t ADD COLUMN z VARCHAR(3) DEFAULT 'q' NOT NULL BEFORE b;"
               "ALTER TABLE t ADD y BIGINT;", cat)
    t = cat2.tables["T"]
    assert [c.name for c in t.columns] == ["A", "Z", "B", "C", "Y"]
    assert t.column("Z").default == "q" and not t.column("Z").nullable
    assert t.altered_from == old.table_id and t.table_id >= cat.next_id
    assert all(ix.index_id >= cat.next_id for ix in t.indexes)
    ch = catalog_changes(cat, cat2)
    assert ch.altered_tables == [("T", old.table_id, t.table_id)]
    assert ch.dropped_table_ids == [old.table_id]
    assert sorted(ch.dropped_index_ids) == sorted(ix.index_id for ix in old.indexes)
    # the input catalog is untouched
    assert [c.name for c in cat.tables["T"].columns] == ["A", "B", "C"]
    # a later batch that does not touch T resets altered_from
    cat3 = ddl("CREATE TABLE other (x INT)", cat2)
    assert cat3.tables["T"].altered_from is None
    assert catalog_changes(cat2, cat3).created_tables == ["OTHER"]
    # drop columns
    fails("ALTER TABLE t DROP COLUMN a", DDLError, "partition column", cat=cat)
    fails("ALTER TABLE t DROP COLUMN b", DDLError, "IX_B", "CASCADE", cat=cat)
    cat4 = ddl("ALTER TABLE t DROP COLUMN b CASCADE; ALTER TABLE t DROP COLUMN c", cat)
    t4 = cat4.tables["T"]
    assert [c.name for c in t4.columns] == ["A"]
    assert [ix.name for ix in t4.indexes] == [old.indexes[0].name]
    assert t4.altered_from == old.table_id


def test_alter_errors_and_constraints():
    cat = ddl("CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, PRIMARY KEY (a, b));"
              "CREATE TABLE u (x INT, y INT);"
              "CREATE VIEW v AS SELECT x, COUNT(*) AS n FROM u GROUP BY x;")
    fails("ALTER TABLE t DROP COLUMN b", DDLError, "primary key", cat=cat)
    fails("ALTER TABLE t ADD COLUMN a INT", CatalogError, "column A already exists", cat=cat)
    fails("ALTER TABLE t ADD COLUMN q INT BEFORE nope", CatalogError, "NOPE", cat=cat)
    fails("ALTER TABLE t ALTER COLUMN a BIGINT", DDLError, "not supported", cat=cat)
    fails("ALTER TABLE v ADD COLUMN q INT", DDLError, "is a view", cat=cat)
    fails("ALTER TABLE u DROP COLUMN x", DDLError, "view V", cat=cat)
    fails("ALTER TABLE nope ADD COLUMN q INT", CatalogError, "NOPE", cat=cat)
    fails("CREATE TABLE w (x INT); ALTER TABLE w DROP COLUMN x", DDLError, "only column",
          cat=cat)
    c2 = ddl("ALTER TABLE u DROP COLUMN x CASCADE", cat)
    assert set(c2.tables) == {"T", "U"} and [c.name for c in c2.tables["U"].columns] == ["Y"]
    c3 = ddl("ALTER TABLE t DROP PRIMARY KEY; ALTER TABLE u ADD CONSTRAINT pk_u PRIMARY KEY (x)",
             cat)
    assert c3.tables["T"].primary_key is None and c3.tables["T"].indexes == []
    assert c3.tables["U"].primary_key == ["X"] and c3.tables["U"].column("X").nullable is False
    c4 = ddl("ALTER TABLE u DROP CONSTRAINT pk_u", c3)
    assert c4.tables["U"].primary_key is None
    c5 = ddl("ALTER TABLE t ADD UNIQUE (b)", cat)
    assert c5.tables["T"].altered_from is None        # an added index keeps the table's id
    assert len(catalog_changes(cat, c5).created_index_ids) == 1


def test_partitioning_an_existing_table_reids_it():
    cat = ddl("CREATE TABLE t (a INT NOT NULL)")
    cat2 = ddl("PARTITION TABLE t ON COLUMN a", cat)
    assert cat2.tables["T"].altered_from == cat.tables["T"].table_id


def test_create_then_alter_in_one_batch_keeps_fresh_id():
    cat = ddl("CREATE TABLE t (a INT); ALTER TABLE t ADD COLUMN b INT;")
    assert cat.tables["T"].altered_from is None and cat.tables["T"].table_id == 1


# ------------------------------------------------------------------ batches and warnings


def test_failed_batch_leaves_catalog_unchanged():
    cat = ddl("CREATE TABLE t (a INT NOT NULL)")
    before = catalog_to_bytes(cat)
    with pytest.raises(DDLError):
        ddl("CREATE TABLE u (b INT); DROP TABLE t; PARTITION TABLE u ON COLUMN b;", cat)
    assert catalog_to_bytes(cat) == before
    assert set(cat.tables) == {"T"} and cat.version == 1


def test_error_names_the_statement_number():
    msg = fails("CREATE TABLE a (x INT);\nCREATE TABLE b (y WHATEVER);", DDLError)
    assert "statement 2" in msg and "CREATE TABLE b" in msg and "WHATEVER" in msg


def test_ignored_statements_warn():
    with pytest.warns(VoltDBCompatibilityWarning) as rec:
        cat = ddl("""CREATE TABLE t (a INT NOT NULL);
            EXPORT TABLE t TO STREAM s;
            CREATE STREAM s PARTITION ON COLUMN a (a INT NOT NULL);
            CREATE ROLE r WITH adhoc;
            DR TABLE t;
            SET DR=ACTIVE;
            CREATE PROCEDURE p ALLOW r AS SELECT 1;""")
    assert len(rec) == 6
    assert set(cat.tables) == {"T"} and set(cat.procedures) == {"p"}


def test_unknown_statement_is_an_error():
    fails("FROBNICATE everything", DDLError, "unknown or unsupported")
    fails("INSERT INTO t VALUES (1)", DDLError, "unknown or unsupported")


def test_empty_text_bumps_version():
    cat = ddl("-- nothing\n;")
    assert cat.version == 1 and cat.tables == {}


def test_file_directive_is_refused():
    fails("file other.sql", DDLError, "file other.sql")


# ------------------------------------------------------------------ voter and fixtures


def test_voter_example_compiles():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat = compile_ddl(Catalog(), VOTER_DDL.read_text(), class_loader=loader)
    assert set(cat.tables) == {"CONTESTANTS", "VOTES", "AREA_CODE_STATE",
                               "V_VOTES_BY_PHONE_NUMBER", "V_VOTES_BY_CONTESTANT_NUMBER_STATE"}
    votes = cat.tables["VOTES"]
    assert [(c.name, c.vtype, c.size) for c in votes.columns] == [
        ("PHONE_NUMBER", VoltType.BIGINT, 0), ("STATE", VoltType.STRING, 2),
        ("CONTESTANT_NUMBER", VoltType.INTEGER, 0)]
    assert votes.partitioned and votes.partition_column == "PHONE_NUMBER"
    assert votes.primary_key is None
    assert cat.tables["CONTESTANTS"].primary_key == ["CONTESTANT_NUMBER"]
    assert cat.tables["AREA_CODE_STATE"].column("AREA_CODE").vtype is VoltType.SMALLINT
    v1 = cat.tables["V_VOTES_BY_PHONE_NUMBER"]
    assert [c.name for c in v1.columns] == ["PHONE_NUMBER", "NUM_VOTES"]
    assert v1.partition_column == "PHONE_NUMBER"
    v2 = cat.tables["V_VOTES_BY_CONTESTANT_NUMBER_STATE"]
    assert v2.primary_key == ["CONTESTANT_NUMBER", "STATE"] and v2.partition_column is None
    assert set(cat.procedures) == {"Initialize", "Results", "Vote", "ContestantWinningStates",
                                   "GetStateHeatmap"}
    vote = cat.procedures["Vote"]
    assert vote.class_path == "voter.Vote" and vote.partition_table == "VOTES"
    assert vote.partition_column == "PHONE_NUMBER" and vote.partition_parameter == 0
    assert all(not p.single_partition for n, p in cat.procedures.items() if n != "Vote")


def test_voter_example_needs_its_classes():
    with pytest.raises(CatalogError, match="voter.Initialize"):
        compile_ddl(Catalog(), VOTER_DDL.read_text(), class_loader=lambda p: 1 / 0)


def test_all_features_fixture():
    cat = ddl(ALL_FEATURES.read_text())
    cust = cat.tables["CUSTOMER"]
    assert cust.partition_column == "ID" and cust.column("JOINED").default_now
    assert cust.column("REGION").in_bytes
    assert cat.tables["ORDERS"].column("NOTE").default == "it's; fine"
    ot = cat.tables["ORDER_TOTALS"]
    assert ot.view.where == "qty > 0" and ot.partition_column == "CUST_ID"
    assert cat.procedures["AddOrder"].partition_parameter == 1
