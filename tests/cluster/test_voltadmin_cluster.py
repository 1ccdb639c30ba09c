# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltadmin-py against a three-host k=1 cluster: status, stop HOST, reduced K-safety,
shutdown of every host."""

from __future__ import annotations

import io
import json

import pytest

from voltdb_py import voltadmin
from voltdb_py._testing import TempCluster, wait_until
from voltdb_py.client import Client

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

KV = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
"""


def _admin(port: int, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = voltadmin.main(["-H", f"127.0.0.1:{port}", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_status_stop_host_and_shutdown():
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=KV) as cl:
        admin0 = cl.host(0).admin_port
        code, out, err = _admin(admin0, "status", "--json")
        assert code == 0, err
        st = json.loads(out)
        assert (st["hostcount"], st["livehost"], st["missing"], st["kfactor"]) == (3, 3, 0, 1)
        assert st["ksafe"] and st["partitionCount"] == 3
        assert sorted(m["hostId"] for m in st["members"]) == [0, 1, 2]
        assert all(len(p["replicas"]) == 2 for p in st["partitions"])
        leaders_before = {p["partition"]: p["leader"] for p in st["partitions"]}

        victim = cl.host(2)
        code, out, err = _admin(admin0, "stop", f"127.0.0.1:{victim.info['internal']}")
        assert code == 0, err
        assert "Host 2" in out
        wait_until(lambda: not victim.alive(), 60, 0.05, message="host 2 exits")
        assert victim.proc.returncode == 0  # a clean stop, not a crash

        code, out, err = _admin(admin0, "status")
        assert code == 0, err
        assert "2 live hosts, 1 missing host" in out and "NOT K-safe" in out, out
        code, out, err = _admin(admin0, "status", "--json")
        st = json.loads(out)
        assert not st["ksafe"] and st["missing"] == 1
        assert all(p["leader"] != 2 and 2 not in p["replicas"] for p in st["partitions"])
        moved = [p for p, h in leaders_before.items() if h == 2]
        assert moved and all(p["leader"] in (0, 1) for p in st["partitions"]
                             if p["partition"] in moved)
        with Client(cl.addresses) as c:
            for k in range(100):
                assert c.call("Put", k, "v").ok
            assert all(c.call("Get", k).tables[0].rows == [("v",)] for k in range(100))

        # an ambiguous address names several hosts; the last host cannot be stopped alone
        code, out, err = _admin(admin0, "stop", "127.0.0.1")
        assert code == 1 and "names 2 hosts" in err, err
        code, out, err = _admin(admin0, "shutdown")
        assert code == 0, err
        for s in cl.servers[:2]:
            wait_until(lambda s=s: not s.alive(), 60, 0.05, message="host exits")
            assert s.proc.returncode == 0


def test_pause_and_resume_apply_to_every_host():
    from voltdb_py.node.server import PAUSED_MESSAGE
    from voltdb_py.types import Status
    with TempCluster(2, kfactor=1, sites_per_host=2, schema=KV) as cl:
        code, out, err = _admin(cl.host(1).admin_port, "pause")
        assert code == 0 and out == "The cluster is paused.\n", err
        for s in cl.servers:  # every host refuses writes from client connections
            with Client([f"127.0.0.1:{s.client_port}"], topology_aware=False) as c:
                r = c.call("Put", 7, "x")
                assert (r.status, r.status_string) == (Status.SERVER_UNAVAILABLE,
                                                       PAUSED_MESSAGE)
                assert c.call("Get", 7).ok
            code, out, _ = _admin(s.admin_port, "status")
            assert "state PAUSED" in out
        with Client([f"127.0.0.1:{cl.host(0).admin_port}"], topology_aware=False) as admin:
            assert admin.call("Put", 8, "admin").ok  # the admin port still writes
        assert _admin(cl.host(0).admin_port, "resume")[0] == 0
        with Client(cl.addresses) as c:
            assert c.call("Put", 7, "x").ok
            assert c.call("Get", 8).tables[0].rows == [("admin",)]
