# SPDX-License-Identifier: AGPL-3.0-or-later
"""A network-partitioned minority stops serving and shuts down; the majority goes on.

Each host runs in its own network namespace (voltdb_py._testing.netns), so a partition
is real: packets between the sides are dropped, connections stall, nothing is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from voltdb_py._testing import deployment_xml, wait_until
from voltdb_py._testing.netns import NetLab, netns_available

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

SCHEMA = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(40));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
"""

# Runs inside a host's namespace: calls Put for keys [lo, hi) through one server, each
# with a short timeout, for at most `seconds`; prints which keys were acknowledged.
CLIENT = r"""
import json, sys, time
from voltdb_py.client import Client
addr, lo, hi, seconds, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    float(sys.argv[4]), sys.argv[5]
acked, other = [], {}
deadline = time.monotonic() + seconds
try:
    c = Client([addr], topology_aware=False, timeout_s=1.5, connect_timeout_s=2)
except Exception as exc:
    print(json.dumps({"acked": [], "other": {"connect": str(exc)[:80]}})); sys.exit(0)
for k in range(lo, hi):
    if time.monotonic() > deadline:
        break
    try:
        r = c.call("Put", k, "x") if mode == "put" else c.call("Get", k)
    except Exception as exc:
        other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1
        continue
    ok = r.status == 1 and (mode == "put" or r.tables[0].rows == [("x",)])
    if ok:
        acked.append(k)
    else:
        other[str(r.status)] = other.get(str(r.status), 0) + 1
try:
    c.close()
except Exception:
    pass
print(json.dumps({"acked": acked, "other": other}))
"""


def _client(lab: NetLab, i: int, server: int, lo: int, hi: int, seconds: float,
            mode: str = "put") -> dict:
    p = lab.popen(i, [sys.executable, "-c", CLIENT, f"{lab.address(server)}:21212",
                      str(lo), str(hi), str(seconds), mode],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=seconds + 30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_isolated_minority_stops_and_majority_serves(tmp_path):
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    (tmp_path / "deployment.xml").write_text(deployment_xml(2, kfactor=1,
                                                            heartbeat_timeout_s=2))
    (tmp_path / "schema.sql").write_text(SCHEMA)
    roots = [tmp_path / f"h{i}" for i in range(3)]
    for root in roots:
        subprocess.run([sys.executable, "-m", "voltdb_py", "init", "--dir", str(root),
                        "--config", str(tmp_path / "deployment.xml"), "--schema",
                        str(tmp_path / "schema.sql")], check=True, capture_output=True,
                       timeout=120)
    with NetLab(3) as lab:
        procs = []
        errs = []
        try:
            for i, root in enumerate(roots):
                a = lab.address(i)
                err = open(tmp_path / f"h{i}.err", "wb")  # noqa: SIM115 - closed below
                errs.append(err)
                procs.append(lab.popen(i, [
                    sys.executable, "-m", "voltdb_py", "start", "--dir", str(root),
                    "--host", f"{lab.address(0)}:3021", "--count", "3",
                    "--client", f"{a}:21212", "--admin", f"{a}:21211",
                    "--internal", f"{a}:3021", "--zookeeper", f"{a}:7181"],
                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True))
            for root in roots:
                wait_until(lambda r=root: (r / "ready.json").exists(), 90, 0.05,
                           message=f"{root.name} ready")
            before = _client(lab, 1, 0, 0, 300, 60)
            assert len(before["acked"]) == 300, before

            lab.isolate(2)
            cut = time.monotonic()
            # The isolated host answers no write once its lease lapsed (half the timeout)
            # and then shuts down: its clients see failures, never acknowledgements.
            wait_until(lambda: time.monotonic() - cut > 1.2, 5, 0.05, message="lease lapse")
            minority = _client(lab, 2, 2, 10_000, 10_100, 8)
            assert minority["acked"] == [], minority
            wait_until(lambda: procs[2].poll() is not None, 60, 0.05,
                       message="minority host shuts down")
            assert procs[2].returncode == 3
            err2 = (tmp_path / "h2.err").read_text(errors="replace")
            assert "partition detection" in err2, err2[-2000:]

            # The majority marks host 2 failed, moves its leaders and keeps serving.
            after = _client(lab, 0, 0, 20_000, 20_300, 60)
            assert len(after["acked"]) >= 290, after
            check = _client(lab, 1, 1, 20_000, 20_300, 60, mode="get")
            assert set(after["acked"]) <= set(check["acked"]), check
            old = _client(lab, 1, 0, 0, 300, 60, mode="get")
            assert len(old["acked"]) == 300, old
            assert procs[0].poll() is None and procs[1].poll() is None
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            for e in errs:
                e.close()
