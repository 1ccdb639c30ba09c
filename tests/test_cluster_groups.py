# SPDX-License-Identifier: AGPL-3.0-or-later
"""A cluster host's group of calls when storage fails: the calls whose effects did not
stand run once more (never a call twice, since replicas run each call once); a second
failure of a replicated group stops the host.

The host's group runner (ClusterHost._run_group and _execute) runs on a real Database;
the failure is injected into its storage's commit, the way a full disk or an I/O error
would fail it.
"""

from __future__ import annotations

import pytest

from voltdb_py import Database
from voltdb_py.errors import StorageError
from voltdb_py.node.cluster import ClusterHost

from support.storage_faults import BUMP_DDL as DDL
from support.storage_faults import bump_rows as _rows
from support.storage_faults import fail_commits

# [procedure, parameters, destination]: compiled inserts (one commit per run of them), a
# general-path update and a directed insert in between (a commit each)
ENTRIES = [["TIns", [1, 0], None], ["TIns", [2, 0], None], ["TBump", [5, 1], None],
           ["TIns", [3, 0], None], ["TIns", [4, 0], 0], ["TIns", [1, 9], None],
           ["TBump", [7, 1], None], ["TIns", [5, 0], None], ["TBump", [1, 2], None]]


class _Host:
    """The parts of a ClusterHost its group runner uses, around a real Database."""

    def __init__(self, db):
        self.host = ClusterHost.__new__(ClusterHost)
        self.host.db = db
        self.host.node = None  # no system procedure among the entries
        self.fatal: list = []
        self.host._fatal = lambda message, abort: self.fatal.append((message, abort))


@pytest.fixture
def oracle(tmp_path):
    with Database.open(tmp_path / "oracle", sites_per_host=2) as db:
        db.execute_ddl(DDL)
        resps, ids = _Host(db).host._run_group(ENTRIES, [None] * len(ENTRIES), None)
        rows = _rows(db)
    directed = db._hashinator.partition_for_value(6, 4)  # BIGINT 4
    assert rows == [(1, 12), (2, 1), (3, 0), (5, 0)] + ([(4, 0)] if directed == 0 else [])
    return [r if type(r) is tuple else r.status for r in resps], rows


def test_a_failed_commit_runs_only_the_calls_that_did_not_stand(tmp_path, oracle):
    want, want_rows = oracle
    n_commits = None
    for fail_at in range(1, 20):
        with Database.open(tmp_path / f"db{fail_at}", sites_per_host=2) as db:
            db.execute_ddl(DDL)
            seen = fail_commits(db, {fail_at})
            h = _Host(db)
            done = h.host._run_group(ENTRIES, [None] * len(ENTRIES), "sent to the replicas")
            assert h.fatal == []
            resps, ids = done
            assert [r if type(r) is tuple else r.status for r in resps] == want
            assert len(ids) == len(ENTRIES)
            assert _rows(db) == want_rows  # each call applied once
            if seen[0] < fail_at:  # nothing failed: every commit was failed once before
                n_commits = seen[0]
                break
    assert n_commits is not None and n_commits >= 5


def test_a_replicated_group_that_fails_twice_stops_the_host(tmp_path, oracle):
    want, want_rows = oracle
    for first in (1, 3, 5):
        with Database.open(tmp_path / f"db{first}", sites_per_host=2) as db:
            db.execute_ddl(DDL)
            fail_commits(db, {first, first + 1})
            h = _Host(db)
            assert h.host._run_group(ENTRIES, [None] * len(ENTRIES),
                                     "replicated from their leader") is None
            assert len(h.fatal) == 1
            message, abort = h.fatal[0]
            assert abort and "replicated from their leader failed here twice" in message
            assert "injected" in message
            # nothing ran twice: what is there is what some prefix of the calls gives
            rows = _rows(db)
        prefixes = []
        for d in range(len(ENTRIES) + 1):
            with Database.open(tmp_path / f"p{first}-{d}", sites_per_host=2) as ref:
                ref.execute_ddl(DDL)
                _Host(ref).host._run_group(ENTRIES[:d], [None] * d, None)
                prefixes.append(_rows(ref))
        assert rows in prefixes


def test_a_group_without_replicated_writes_raises(tmp_path):
    with Database.open(tmp_path / "db", sites_per_host=2) as db:
        db.execute_ddl(DDL)
        fail_commits(db, {2})
        h = _Host(db)
        with pytest.raises(StorageError, match="injected"):
            h.host._run_group(ENTRIES, [None] * len(ENTRIES), None)
        assert h.fatal == []
