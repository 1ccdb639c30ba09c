# SPDX-License-Identifier: AGPL-3.0-or-later
"""Durability: every call that returned success survives kill -9 of the process."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from voltdb_py import Database, Status

ACK = re.compile(r"ACK \d+\n")

CHILD = textwrap.dedent('''
    import sys
    from voltdb_py import Database
    path, sync = sys.argv[1], sys.argv[2]
    db = Database.open(path, sites_per_host=4, sync=sync)
    if "T" not in db.catalog.tables:
        db.execute_ddl("""
            CREATE TABLE t (id BIGINT NOT NULL PRIMARY KEY, payload VARCHAR(100));
            PARTITION TABLE t ON COLUMN id;
            CREATE PROCEDURE Ins PARTITION ON TABLE t COLUMN id AS
                INSERT INTO t VALUES (?, ?);
        """)
    print("READY", flush=True)
    i = 0
    while True:
        i += 1
        if i % 5 == 0:
            # a failing call (duplicate key) must leave no trace
            r = db.call("Ins", i - 1, "dup")
            assert r.status != 1
        r = db.call("Ins", i, "row %d" % i)
        if r.status == 1:
            print("ACK", i, flush=True)
''')


@pytest.mark.parametrize("sync", ["periodic", "commit"])
def test_acknowledged_calls_survive_kill_9(tmp_path, sync):
    path = tmp_path / "db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(path), sync],
                            stdout=subprocess.PIPE, text=True)
    acked = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout.readline().strip() == "READY"
        target = 300 if sync == "periodic" else 40
        while len(acked) < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if ACK.fullmatch(line):
                acked.append(int(line.split()[1]))
        assert len(acked) >= target, "child did not make progress"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # Read whatever acknowledgements were already in the pipe before the kill.
    with proc.stdout:
        for line in proc.stdout:
            # the kill may cut the last line short: only whole lines are acknowledgements
            if ACK.fullmatch(line):
                acked.append(int(line.split()[1]))
    with Database.open(path) as db:
        resp = db.adhoc("SELECT id, payload FROM t ORDER BY id")
        assert resp.status == Status.SUCCESS
        rows = resp.tables[0].rows
        present = {r[0] for r in rows}
        missing = [i for i in acked if i not in present]
        assert not missing, f"acknowledged rows lost: {missing[:10]}"
        # no half-written or duplicate rows: every payload is the one its insert wrote
        assert all(p == f"row {i}" for i, p in rows)
        # at most the one call in flight at the kill may be present without an ACK
        assert len(present - set(acked)) <= 1
        counts = db.call("@Statistics", "TABLE", 0).tables[0]
        total = sum(r[counts.column_index("TUPLE_COUNT")] for r in counts.rows)
        assert total == len(rows)
