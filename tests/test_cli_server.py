# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltdb-py init / start: arguments, error messages and exit codes."""

import json
import os
import signal
import subprocess
import sys

import pytest

from voltdb_py._testing import deployment_xml, wait_until
from voltdb_py.cli import main

DDL = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(10));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
"""


@pytest.fixture()
def files(tmp_path):
    dep = tmp_path / "deployment.xml"
    dep.write_text(deployment_xml(2))
    ddl = tmp_path / "ddl.sql"
    ddl.write_text(DDL)
    return dep, ddl


def _init(root, dep, ddl, *extra):
    return main(["init", "--dir", str(root), "--config", str(dep), "--schema", str(ddl),
                 *extra])


def test_init_creates_a_root_and_refuses_to_redo_it(tmp_path, files, capsys):
    dep, ddl = files
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    assert (root / "config" / "deployment.xml").read_text() == dep.read_text()
    cluster = json.loads((root / "config" / "cluster.json").read_text())
    assert cluster["sites_per_host"] == 2 and cluster["host_count"] == 1
    assert cluster["hashinator_version"] == 1 and cluster["topology"]["version"] == 1
    capsys.readouterr()
    assert _init(root, dep, ddl) == 1
    assert "already initialized" in capsys.readouterr().err
    assert _init(root, dep, ddl, "--force") == 0
    from voltdb_py import Database
    with Database.open(root / "database") as db:
        assert db.partition_count == 2 and "KV" in db.catalog.tables


def test_init_loads_sqlcmd_scripts_with_inline_batches(tmp_path, files):
    dep, _ = files
    ddl = tmp_path / "script.sql"
    ddl.write_text("file -inlinebatch END_OF_BATCH\n" + DDL + "\nEND_OF_BATCH\n"
                   "LOAD CLASSES procs.jar;\n"
                   "CREATE PROCEDURE Cnt AS SELECT COUNT(*) FROM kv;\n")
    assert _init(tmp_path / "D", dep, ddl) == 0


@pytest.mark.parametrize("case", ["bad-xml", "bad-ddl", "missing-schema", "missing-config",
                                  "kfactor", "missing-classes", "not-empty"])
def test_init_errors_exit_1_and_leave_nothing(tmp_path, files, capsys, case):
    dep, ddl = files
    root = tmp_path / "D"
    args = ["init", "--dir", str(root), "--config", str(dep), "--schema", str(ddl)]
    expect = {"bad-xml": "not well-formed", "bad-ddl": "schema", "missing-schema": "not found",
              "missing-config": "not found", "kfactor": "kfactor",
              "missing-classes": "not found", "not-empty": "not empty"}[case]
    if case == "bad-xml":
        dep.write_text("<deployment><cluster")
    elif case == "bad-ddl":
        ddl.write_text(DDL + "CREATE TABLE broken (;")
    elif case == "missing-schema":
        args[-1] = str(tmp_path / "nope.sql")
    elif case == "missing-config":
        args[4] = str(tmp_path / "nope.xml")
    elif case == "kfactor":
        dep.write_text('<deployment><cluster sitesperhost="2" kfactor="one"/></deployment>')
    elif case == "missing-classes":
        args += ["--classes", str(tmp_path / "nope.py")]
    elif case == "not-empty":
        root.mkdir()
        (root / "precious.txt").write_text("keep me")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("voltdb-py init: error:") and expect in err, err
    if case == "not-empty":
        assert sorted(p.name for p in root.iterdir()) == ["precious.txt"]
    else:
        assert not root.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_force_leaves_the_old_root_intact(tmp_path, files, capsys):
    dep, ddl = files
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE x (;")
    assert _init(root, dep, bad, "--force") == 1
    from voltdb_py import Database
    with Database.open(root / "database") as db:
        assert "KV" in db.catalog.tables


@pytest.mark.parametrize("args,expect", [
    (["--zookeeper", "x:y"], "is not [ip:]port"),
    (["--internal", "99999"], "is not [ip:]port"),
    (["--count", "0"], "--count must be >= 1"),
    (["--add"], "Cluster is already complete"),
    (["--client", "127.0.0.1:notaport"], "is not [ip:]port"),
    (["--admin", "70000"], "is not [ip:]port"),
    (["--host", "a:b"], "is not host[:port]"),
])
def test_start_argument_errors(tmp_path, files, capsys, args, expect):
    dep, ddl = files
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    capsys.readouterr()
    assert main(["start", "--dir", str(root), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("voltdb-py start: error:") and expect in err, err


def test_start_refuses_fewer_hosts_than_replicas(tmp_path, files, capsys):
    dep, ddl = files
    dep.write_text('<deployment><cluster sitesperhost="2" kfactor="1"/></deployment>')
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    capsys.readouterr()
    assert main(["start", "--dir", str(root), "--count", "1"]) == 1
    err = capsys.readouterr().err
    assert "System requesting 2 replicas but there are only 1 eligible hosts" in err, err


def test_start_needs_an_initialized_root(tmp_path, capsys):
    assert main(["start", "--dir", str(tmp_path / "nothing")]) == 1
    assert "run 'voltdb-py init" in capsys.readouterr().err


def test_missing_required_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["init"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["start"])
    assert e.value.code == 2


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_background_start_then_sigterm(tmp_path, files):
    dep, ddl = files
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    cmd = [sys.executable, "-m", "voltdb_py", "start", "--dir", str(root),
           "--client", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    r = subprocess.run([*cmd, "--background"], capture_output=True, text=True, timeout=90)
    pid = None
    try:
        assert r.returncode == 0, r.stderr
        line = r.stdout.strip().splitlines()[-1]
        assert line.startswith("VOLTDB_PY_READY ")
        info = json.loads(line.split(" ", 1)[1])
        pid = info["pid"]
        assert json.loads((root / "ready.json").read_text()) == info
        assert info["client"] > 0 and info["admin"] > 0 and info["host_id"] == 0
        # a second server on the same root is refused
        r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r2.returncode == 1 and "already running" in r2.stderr
        from voltdbclient import FastSerializer, VoltProcedure
        fs = FastSerializer("127.0.0.1", info["client"], connect_timeout=5,
                            procedure_timeout=10)
        try:
            assert VoltProcedure(fs, "@Ping", []).call([]).status == 1
        finally:
            fs.close()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _alive(pid), 30, message="server exit after SIGTERM")
        pid = None
        assert not (root / "ready.json").exists()
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # the detached server is not our child; a zombie has no /proc status "Z" once reaped
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line for line in f)
    except OSError:
        return False


def test_event_loop_choice(monkeypatch, tmp_path, files, capsys):
    import asyncio

    from voltdb_py._loop import use_event_loop
    from voltdb_py.errors import VoltError

    with pytest.raises(VoltError, match="VOLTDB_PY_EVENT_LOOP='fast': expected auto"):
        use_event_loop("fast")
    try:
        assert use_event_loop("asyncio") == "asyncio"
        assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy
        try:
            import uvloop  # noqa: F401
            has_uvloop = True
        except ImportError:
            has_uvloop = False
        assert use_event_loop("auto") == ("uvloop" if has_uvloop else "asyncio")
        if not has_uvloop:
            with pytest.raises(VoltError, match="uvloop is not installed"):
                use_event_loop("uvloop")
    finally:
        use_event_loop("asyncio")
    # a bad value stops `start` before anything runs
    dep, ddl = files
    root = tmp_path / "D"
    assert _init(root, dep, ddl) == 0
    capsys.readouterr()
    monkeypatch.setenv("VOLTDB_PY_EVENT_LOOP", "fast")
    assert main(["start", "--dir", str(root), "--client", "127.0.0.1:0",
                 "--admin", "127.0.0.1:0"]) == 1
    assert "VOLTDB_PY_EVENT_LOOP='fast'" in capsys.readouterr().err
    assert not (root / "ready.json").exists()


@pytest.mark.cluster
@pytest.mark.timeout(120)
@pytest.mark.parametrize("loop", ["asyncio", "auto"])
def test_server_serves_on_either_event_loop(loop):
    """Servers run on uvloop when it is installed; the plain asyncio loop must serve
    the same (VOLTDB_PY_EVENT_LOOP=asyncio)."""
    import asyncio

    from voltdb_py._testing import TempServer
    from voltdb_py.client import AsyncClient

    async def calls(port):
        async with await AsyncClient.connect(f"127.0.0.1:{port}") as c:
            puts = await asyncio.gather(*(c.call("Put", i, str(i)) for i in range(200)))
            gets = await asyncio.gather(*(c.call("Get", i) for i in range(200)))
        assert all(r.status == 1 for r in puts)
        assert [r.tables[0].rows for r in gets] == [[(str(i),)] for i in range(200)]

    schema = DDL + "CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS " \
                   "UPSERT INTO kv VALUES (?, ?);\n"
    with TempServer(schema=schema, env={"VOLTDB_PY_EVENT_LOOP": loop}) as srv:
        asyncio.run(calls(srv.client_port))
