# SPDX-License-Identifier: AGPL-3.0-or-later
"""Storage failures injected into a real Database: a commit that fails the way a full
disk or an I/O error fails it (the transaction is aborted, StorageError raised)."""

from __future__ import annotations

from voltdb_py.errors import StorageError

# compiled inserts (a group commit per run of them) and general-path updates (a commit
# each, and they add: a call applied twice shows in the rows)
BUMP_DDL = """
CREATE TABLE t (k BIGINT NOT NULL PRIMARY KEY, n INTEGER NOT NULL);
PARTITION TABLE t ON COLUMN k;
CREATE PROCEDURE TIns PARTITION ON TABLE t COLUMN k AS INSERT INTO t VALUES (?, ?);
CREATE PROCEDURE TBump PARTITION ON TABLE t COLUMN k PARAMETER 1 AS
    UPDATE t SET n = n + ? WHERE k = ?;
"""


def bump_rows(db) -> list:
    """The (k, n) rows of BUMP_DDL's table, sorted."""
    return sorted(db.call("@AdHoc", "SELECT k, n FROM t").tables[0].rows)


def fail_commits(db, at: set[int]) -> list[int]:
    """Make the commits numbered in `at` (from 1) of db's storage fail; returns a
    one-item list counting the commits tried."""
    real = db._storage.commit
    seen = [0]

    def commit(txn):
        seen[0] += 1
        if seen[0] in at:
            txn.abort()
            raise StorageError("commit failed: injected")
        real(txn)
    db._storage.commit = commit
    return seen
