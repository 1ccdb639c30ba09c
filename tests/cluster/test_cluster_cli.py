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


def test_background_hosts_return_before_the_cluster_forms(tmp_path):
    """Started one after another with --background, each host returns at once; the
    cluster forms when the last one has started."""
    from voltdb_py._testing import deployment_xml, wait_until
    from voltdb_py.node.cluster import free_port
    (tmp_path / "ddl.sql").write_text(DDL)
    (tmp_path / "d.xml").write_text(deployment_xml(2, kfactor=1, heartbeat_timeout_s=2))
    seed = free_port()
    roots = [tmp_path / f"h{i}" for i in range(3)]
    pids = []
    try:
        for i, root in enumerate(roots):
            r = _run("init", "--dir", str(root), "--config", str(tmp_path / "d.xml"),
                     "--schema", str(tmp_path / "ddl.sql"))
            assert r.returncode == 0, r.stderr
        for i, root in enumerate(roots):
            r = _run("start", "--dir", str(root), "--host", f"127.0.0.1:{seed}",
                     "--count", "3", "--internal", f"127.0.0.1:{seed if i == 0 else 0}",
                     "--zookeeper", "127.0.0.1:0", "--client", "127.0.0.1:0",
                     "--admin", "127.0.0.1:0", "--http", "127.0.0.1:0", "--background",
                     timeout=60)
            assert r.returncode == 0, r.stderr
            if r.stdout.startswith("VOLTDB_PY_READY "):  # the last host may complete it
                assert i == 2, r.stdout
                pids.append(json.loads(r.stdout[len("VOLTDB_PY_READY "):])["pid"])
            else:
                assert "once all hosts of the cluster have started" in r.stdout, r.stdout
                pids.append(int(r.stdout.split("(pid ")[1].split(",")[0]))
        infos = [wait_until(lambda r=root: (r / "ready.json").exists() and
                            json.loads((r / "ready.json").read_text()), 60, 0.05,
                            message="ready") for root in roots]
        assert sorted(i["host_id"] for i in infos) == [0, 1, 2]
        assert not any((root / "forming.json").exists() for root in roots)
        with Client([f"127.0.0.1:{i['client']}" for i in infos]) as c:
            assert c.call("Put", 1, "x").ok
        with Client([f"127.0.0.1:{infos[0]['admin']}"], topology_aware=False) as c:
            assert c.call("@Shutdown").ok
        wait_until(lambda: not any(_alive(p) for p in pids), 60, 0.05, message="all stop")
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, 9)
