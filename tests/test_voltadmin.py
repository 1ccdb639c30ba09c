# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltadmin-py: option parsing and status rendering (unit tests), and status, pause,
resume, stop and shutdown against a real server process (cluster tests)."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from voltdb_py import voltadmin
from voltdb_py._testing import TempServer, deployment_xml, wait_until
from voltdb_py.client import Client, Status
from voltdb_py.node.server import PAUSED_MESSAGE
from voltdb_py.voltadmin import ClusterStatus, parse_host

ROOT = Path(__file__).resolve().parent.parent
KV = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
"""


# --------------------------------------------------------------------------- unit tests

def test_parse_host_defaults_to_the_admin_port():
    assert parse_host("db1") == ("db1", 21211)
    assert parse_host("db1:3000") == ("db1", 3000)
    assert parse_host("[::1]:5") == ("::1", 5)
    assert parse_host("::1") == ("::1", 21211)
    assert parse_host("") == ("localhost", 21211)
    for bad in ("db1:x", "db1:0", "db1:70000"):
        with pytest.raises(ValueError):
            parse_host(bad)


def test_options_go_before_or_after_the_verb():
    p = voltadmin.build_parser()
    a = p.parse_args(["-H", "h:1", "-u", "bob", "status", "-p", "pw", "--json", "-c",
                      "--count", "3", "--interval", "0.5"])
    assert (a.host, a.user, a.password, a.verb, a.json, a.continuous, a.count, a.interval) \
        == ("h:1", "bob", "pw", "status", True, True, 3, 0.5)
    a = p.parse_args(["stop", "--force", "db2"])
    assert (a.verb, a.force, a.host_to_stop) == ("stop", True, "db2")
    assert not hasattr(a, "host")
    with pytest.raises(SystemExit):
        p.parse_args([])
    with pytest.raises(SystemExit):
        p.parse_args(["frobnicate"])


def _status(kfactor=0, replicas=((0,), (0,))):
    overview = {0: {"HOSTNAME": "db1", "IPADDRESS": "10.0.0.1", "CLIENTPORT": "21212",
                    "ADMINPORT": "21211", "VERSION": "0.1.0", "FULLCLUSTERSIZE": "2",
                    "KFACTOR": str(kfactor), "UPTIME": "0 days 00:01:00.000",
                    "CLUSTERSTATE": "RUNNING", "CLUSTERID": "0"}}
    parts = [{"partition": i, "leader": r[0], "replicas": list(r)} for i, r in enumerate(replicas)]
    return ClusterStatus(overview, parts, len(parts))


def test_status_text_and_json():
    st = _status()
    text = st.to_text()
    assert text.startswith("Cluster 0, version 0.1.0, hostcount 2, kfactor 0, state RUNNING\n"
                           " 1 live host, 1 missing host, 2 partitions, uptime 0 days")
    assert "     0                 db1          10.0.0.1   21212   21211        2\n" in text
    assert "K-safe)" in text
    body = st.to_json()
    assert (body["livehost"], body["missing"], body["ksafe"], body["partitionCount"]) == \
        (1, 1, True, 2)
    assert body["members"][0]["leaders"] == [0, 1]
    unsafe = _status(kfactor=1, replicas=((0,), (0, 1)))
    assert not unsafe.ksafe
    assert "partitions 0 have fewer than 2 live replicas (NOT K-safe)" in unsafe.to_text()


# --------------------------------------------------------------------------- real servers

def _admin(srv, *args, host=None):
    out, err = io.StringIO(), io.StringIO()
    code = voltadmin.main(["-H", host or f"127.0.0.1:{srv.admin_port}", *args],
                          stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _env():
    env = dict(os.environ)
    return env


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_status_reports_hosts_partitions_and_leaders():
    with TempServer(schema=KV, sites_per_host=3) as srv:
        code, out, err = _admin(srv, "status")
        assert (code, err) == (0, "")
        assert "hostcount 1, kfactor 0, state RUNNING" in out
        assert " 1 live host, 0 missing hosts, 3 partitions, uptime " in out
        assert f"127.0.0.1{srv.client_port:>8}{srv.admin_port:>8}        3\n" in out
        assert "K-safety: kfactor 0" in out
        code, out, err = _admin(srv, "status", "--json", "-c", "--count", "3",
                                "--interval", "0")
        assert code == 0
        reports = [json.loads(line) for line in out.splitlines()]
        assert len(reports) == 3
        r = reports[-1]
        assert (r["hostcount"], r["livehost"], r["missing"], r["kfactor"], r["state"],
                r["partitionCount"], r["ksafe"]) == (1, 1, 0, 0, "RUNNING", 3, True)
        assert r["members"][0]["leaders"] == [0, 1, 2]
        assert r["members"][0]["clientPort"] == srv.client_port
        assert [p["replicas"] for p in r["partitions"]] == [[0], [0], [0]]
        # The module runs as a program too.
        p = subprocess.run([sys.executable, "-m", "voltdb_py.voltadmin", "-H",
                            f"127.0.0.1:{srv.admin_port}", "status", "-j"],
                           capture_output=True, text=True, env=_env(), timeout=60)
        assert p.returncode == 0 and json.loads(p.stdout)["livehost"] == 1


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_pause_makes_client_connections_read_only_until_resume():
    with TempServer(schema=KV, sites_per_host=2) as srv:
        with Client(f"127.0.0.1:{srv.client_port}") as c, \
                Client(f"127.0.0.1:{srv.admin_port}", topology_aware=False) as admin:
            assert c.call("Put", 1, "one").ok
            # @Pause only on the admin port.
            r = c.call("@Pause")
            assert r.status == Status.UNEXPECTED_FAILURE and "admin port" in r.status_string
            assert _admin(srv, "pause") == (0, "The cluster is paused.\n", "")
            for resp in (c.call("Put", 2, "two"),
                         c.call("@AdHoc", "INSERT INTO kv VALUES (3, 'three')"),
                         c.call("@AdHoc", "CREATE TABLE t (a INT)"),
                         c.call("@AdHoc", "DELETE FROM kv")):
                assert (resp.status, resp.status_string) == \
                    (Status.SERVER_UNAVAILABLE, PAUSED_MESSAGE)
            # Reads still work, writes through the admin port too.
            assert c.call("Get", 1).tables[0].rows == [("one",)]
            assert c.call("@AdHoc", "SELECT COUNT(*) FROM kv").tables[0].scalar() == 1
            assert admin.call("Put", 4, "four").ok
            code, out, _ = _admin(srv, "status")
            assert code == 0 and "state PAUSED" in out
            assert _admin(srv, "pause", "--wait")[0] == 0          # idempotent
            assert _admin(srv, "resume") == (0, "The cluster has resumed.\n", "")
            assert c.call("Put", 2, "two").ok
            assert c.call("@AdHoc", "SELECT COUNT(*) FROM kv").tables[0].scalar() == 3
            assert "state RUNNING" in _admin(srv, "status")[1]


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_stop_refuses_the_last_host_and_shutdown_stops_the_server():
    with TempServer(schema=KV, sites_per_host=2) as srv:
        code, out, err = _admin(srv, "stop", "127.0.0.1")
        assert code == 1
        assert err == ('voltadmin-py: error: The entire cluster is being stopped, '
                       'use "shutdown" instead.\n')
        code, _, err = _admin(srv, "stop", "no-such-host.invalid")
        assert code == 1 and "Host not found in cluster: no-such-host.invalid" in err
        assert srv.alive()
        code, out, err = _admin(srv, "shutdown")
        assert (code, err) == (0, "")
        assert out == "Cluster shutdown in progress.\nThe cluster has shut down.\n"
        wait_until(lambda: not srv.alive(), timeout_s=30, message="server exit")
        assert srv.proc.returncode == 0


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_unreachable_hosts_and_credentials():
    assert voltadmin.main(["-H", "127.0.0.1:1", "status"], stdout=io.StringIO(),
                          stderr=io.StringIO()) == 1
    e = io.StringIO()
    assert voltadmin.main(["-H", "127.0.0.1:1", "pause"], stdout=io.StringIO(), stderr=e) == 1
    assert "Unable to connect to VoltDB cluster at 127.0.0.1:1" in e.getvalue()
    users = {"admin": ("secret", "administrator"), "bob": ("pw", "user")}
    with TempServer(schema=KV, deployment=deployment_xml(2, users=users, security=True)) as srv:
        code, _, err = _admin(srv, "-u", "admin", "-p", "wrong", "status")
        assert code == 1 and "Authentication rejected" in err and "'admin'" in err
        code, out, err = _admin(srv, "-u", "admin", "-p", "secret", "status", "--json")
        assert code == 0 and json.loads(out)["livehost"] == 1
        # A user without the administrator role cannot pause or shut down.
        code, _, err = _admin(srv, "pause", "-u", "bob", "-p", "pw")
        assert code == 1 and "does not have admin permission" in err
        code, _, err = _admin(srv, "shutdown", "-u", "bob", "-p", "pw")
        assert code == 1 and "admin permission" in err
        assert srv.alive()
