# SPDX-License-Identifier: AGPL-3.0-or-later
"""Stateful test of the embedded executor against sqlite3 as the model.

Random sequences of procedure calls, ad hoc DML, aborted calls, constraint failures and
reopenings; after every step the database holds exactly the rows sqlite holds, the
materialized view equals its GROUP BY, and @Statistics counts match.
"""

import shutil
import sqlite3
import tempfile
import textwrap
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from voltdb_py import Database, Status

PROCS = textwrap.dedent('''
    from voltdb_py import SQLStmt, VoltAbortException, VoltProcedure

    class MoveThenMaybeAbort(VoltProcedure):
        get = SQLStmt("SELECT qty FROM item WHERE id = ?;")
        set_qty = SQLStmt("UPDATE item SET qty = ? WHERE id = ?;")
        log = SQLStmt("INSERT INTO item (id, grp, qty) VALUES (?, ?, ?);")

        def run(self, id: int, delta: int, new_id: int, abort: int):
            self.queue_sql(self.get, id)
            rows = self.execute_sql()[0].rows
            if not rows:
                return 0
            qty = rows[0][0] if rows[0][0] is not None else 0
            self.queue_sql(self.set_qty, qty + delta, id)
            self.queue_sql(self.log, new_id, "moved", delta)
            self.execute_sql()
            if abort:
                raise VoltAbortException("asked to abort")
            return 1
''')

DDL = """
CREATE TABLE item (id INTEGER NOT NULL, grp VARCHAR(8) NOT NULL, qty BIGINT,
                   PRIMARY KEY (id));
PARTITION TABLE item ON COLUMN id;
CREATE TABLE tag (name VARCHAR(4) NOT NULL PRIMARY KEY, weight INTEGER);
CREATE VIEW item_by_grp (grp, n, total, lo) AS
    SELECT grp, COUNT(*), SUM(qty), MIN(qty) FROM item GROUP BY grp;
CREATE PROCEDURE PutItem PARTITION ON TABLE item COLUMN id AS
    UPSERT INTO item VALUES (?, ?, ?);
CREATE PROCEDURE AddItem PARTITION ON TABLE item COLUMN id AS
    INSERT INTO item VALUES (?, ?, ?);
CREATE PROCEDURE DropItem PARTITION ON TABLE item COLUMN id AS
    DELETE FROM item WHERE id = ?;
CREATE PROCEDURE PARTITION ON TABLE item COLUMN id FROM CLASS stock.MoveThenMaybeAbort;
"""

ids = st.integers(0, 12)
groups = st.sampled_from(["a", "b", "c", "moved"])
qtys = st.one_of(st.none(), st.integers(-50, 50))


class DatabaseMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        (self.dir / "stock.py").write_text(PROCS)
        self.db = Database.open(self.dir / "db", sites_per_host=3)
        self.db.load_classes(self.dir / "stock.py")
        self.db.execute_ddl(DDL)
        self.model = sqlite3.connect(":memory:")
        self.model.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, grp TEXT NOT NULL, "
                           "qty INTEGER)")
        self.model.execute("CREATE TABLE tag (name TEXT PRIMARY KEY, weight INTEGER)")

    def teardown(self):
        self.db.close()
        self.model.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _model_try(self, sql, params):
        try:
            with self.model:
                self.model.execute(sql, params)
            return True
        except sqlite3.IntegrityError:
            return False

    @rule(i=ids, g=groups, q=qtys)
    def upsert(self, i, g, q):
        assert self.db.call("PutItem", i, g, q).status == Status.SUCCESS
        self._model_try("INSERT OR REPLACE INTO item VALUES (?, ?, ?)", (i, g, q))

    @rule(i=ids, g=groups, q=qtys)
    def insert(self, i, g, q):
        resp = self.db.call("AddItem", i, g, q)
        expected = self._model_try("INSERT INTO item VALUES (?, ?, ?)", (i, g, q))
        assert (resp.status == Status.SUCCESS) == expected, resp.status_string
        if not expected:
            assert resp.status == Status.GRACEFUL_FAILURE

    @rule(i=ids)
    def delete(self, i):
        resp = self.db.call("DropItem", i)
        assert resp.status == Status.SUCCESS
        n = self.model.execute("DELETE FROM item WHERE id = ?", (i,)).rowcount
        self.model.commit()
        assert resp.tables[0].rows == [(n,)]

    @rule(lo=ids, delta=st.integers(-5, 5), g=groups)
    def adhoc_update(self, lo, delta, g):
        resp = self.db.adhoc("UPDATE item SET qty = qty + ?, grp = ? WHERE id >= ?",
                             delta, g, lo)
        assert resp.status == Status.SUCCESS, resp.status_string
        n = self.model.execute("UPDATE item SET qty = qty + ?, grp = ? WHERE id >= ?",
                               (delta, g, lo)).rowcount
        self.model.commit()
        assert resp.tables[0].rows == [(n,)]

    @rule(i=ids, delta=st.integers(-5, 5), new_id=ids, abort=st.booleans())
    def procedure_with_abort(self, i, delta, new_id, abort):
        resp = self.db.call("MoveThenMaybeAbort", i, delta, new_id, int(abort))
        exists = self.model.execute("SELECT qty FROM item WHERE id = ?", (i,)).fetchone()
        same_partition = self.db.partition_for("ITEM", new_id) == self.db.partition_for("ITEM", i)
        if exists is None:
            assert resp.status == Status.SUCCESS and resp.tables[0].rows == [(0,)]
            return
        if not same_partition:
            # the insert targets another partition: mispartitioned, rolled back whole
            assert resp.status == Status.GRACEFUL_FAILURE
            return
        taken = new_id != i and self.model.execute(
            "SELECT 1 FROM item WHERE id = ?", (new_id,)).fetchone() is not None
        if new_id == i or taken:
            assert resp.status == Status.GRACEFUL_FAILURE  # duplicate key: nothing kept
            return
        if abort:
            assert resp.status == Status.USER_ABORT
            return
        assert resp.status == Status.SUCCESS, resp.status_string
        with self.model:
            self.model.execute("UPDATE item SET qty = ? WHERE id = ?",
                               ((exists[0] or 0) + delta, i))
            self.model.execute("INSERT INTO item VALUES (?, 'moved', ?)", (new_id, delta))

    @rule(name=st.sampled_from(["x", "yy", "zzz"]), w=st.integers(0, 9))
    def replicated_write(self, name, w):
        resp = self.db.adhoc("UPSERT INTO tag VALUES (?, ?)", name, w)
        assert resp.status == Status.SUCCESS, resp.status_string
        self._model_try("INSERT OR REPLACE INTO tag VALUES (?, ?)", (name, w))

    @rule()
    def truncate_tags(self):
        assert self.db.adhoc("TRUNCATE TABLE tag").status == Status.SUCCESS
        self.model.execute("DELETE FROM tag")
        self.model.commit()

    @precondition(lambda self: True)
    @rule()
    def reopen(self):
        self.db.close()
        self.db = Database.open(self.dir / "db")

    @invariant()
    def same_rows(self):
        got = self.db.adhoc("SELECT id, grp, qty FROM item ORDER BY id")
        assert got.status == Status.SUCCESS, got.status_string
        assert got.tables[0].rows == self.model.execute(
            "SELECT id, grp, qty FROM item ORDER BY id").fetchall()
        tags = self.db.adhoc("SELECT name, weight FROM tag ORDER BY name").tables[0].rows
        assert tags == self.model.execute("SELECT * FROM tag ORDER BY name").fetchall()

    @invariant()
    def view_is_group_by(self):
        got = self.db.adhoc(
            "SELECT grp, SUM(n), SUM(total), MIN(lo) FROM item_by_grp GROUP BY grp "
            "ORDER BY grp").tables[0].rows
        want = self.model.execute(
            "SELECT grp, COUNT(*), SUM(qty), MIN(qty) FROM item GROUP BY grp "
            "ORDER BY grp").fetchall()
        assert got == want

    @invariant()
    def statistics_count_rows(self):
        t = self.db.call("@Statistics", "TABLE", 0).tables[0]
        n = sum(r[t.column_index("TUPLE_COUNT")] for r in t.rows
                if r[t.column_index("TABLE_NAME")] == "ITEM")
        assert n == self.model.execute("SELECT COUNT(*) FROM item").fetchone()[0]


DatabaseMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25,
                                             deadline=None)
TestDatabaseMachine = DatabaseMachine.TestCase
