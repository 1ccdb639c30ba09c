# SPDX-License-Identifier: AGPL-3.0-or-later
"""``voltdb-py cluster up`` / ``down`` as a user runs them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from voltdb_py.client import Client

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

DDL = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
"""


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voltdb_py", *args], capture_output=True,
                          text=True, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def test_cluster_up_serves_and_down_stops_every_process(tmp_path):
    (tmp_path / "ddl.sql").write_text(DDL)
    d = tmp_path / "c"
    r = _run("cluster", "up", "--dir", str(d), "--hosts", "3", "--kfactor", "1",
             "--sitesperhost", "2", "--port-base", "0", "--schema", str(tmp_path / "ddl.sql"))
    state = json.loads((d / "cluster.json").read_text()) if (d / "cluster.json").exists() \
        else None
    try:
        assert r.returncode == 0, r.stderr
        assert "Ready. Connect with: sqlcmd-py --servers" in r.stdout
        assert sorted(h["host_id"] for h in state["hosts"]) == [0, 1, 2]
        assert {h["partitions"] for h in state["hosts"]} == {3}
        with Client([f"127.0.0.1:{h['client']}" for h in state["hosts"]]) as c:
            for k in range(50):
                assert c.call("Put", k, "v").ok
            assert c.call("@AdHoc", "SELECT COUNT(*) FROM kv").tables[0].rows == [(50,)]
        again = _run("cluster", "up", "--dir", str(d), "--port-base", "0")
        assert again.returncode == 1 and "already running" in again.stderr
        r = _run("cluster", "down", "--dir", str(d))
        assert r.returncode == 0, r.stderr
        assert "has shut down" in r.stdout and "killed" not in r.stdout
        assert not any(_alive(h["pid"]) for h in state["hosts"])
        assert not (d / "cluster.json").exists()
        r = _run("cluster", "down", "--dir", str(d))
        assert r.returncode == 1 and "no cluster was started" in r.stderr
    finally:
        for h in (state or {}).get("hosts", []):
            if _alive(h["pid"]):
                os.kill(h["pid"], 9)


def test_cluster_up_refuses_bad_arguments(tmp_path):
    r = _run("cluster", "up", "--dir", str(tmp_path / "x"), "--hosts", "1", "--kfactor", "1")
    assert r.returncode == 1 and "System requesting 2 replicas" in r.stderr
    r = _run("cluster", "up", "--dir", str(tmp_path / "x"), "--hosts", "0")
    assert r.returncode == 1 and "--hosts" in r.stderr
