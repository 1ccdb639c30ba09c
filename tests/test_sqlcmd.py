# SPDX-License-Identifier: AGPL-3.0-or-later
"""sqlcmd-py: script splitting, exec arguments and output formats (unit tests), and real
runs against a server process (cluster tests), including the voter example as a user
would load it."""

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from voltdb_py import sqlcmd
from voltdb_py._testing import TempServer, deployment_xml
from voltdb_py.client import Client
from voltdb_py.sqlcmd import (
    Command,
    ScriptSplitter,
    SqlcmdError,
    coerce_partition_arg,
    format_table,
    parse_exec_args,
    split_commands,
)
from voltdb_py.types import Column, VoltTable, VoltType

ROOT = Path(__file__).resolve().parent.parent
VOTER = ROOT / "python" / "voltdb_py" / "examples" / "voter"
CONTESTANTS = ("Edwina Burnam,Tabatha Gehling,Kelly Clauss,Jessie Alloway,Alana Bregman,"
               "Jessie Eichman")
KV = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
"""


# --------------------------------------------------------------------------- splitting

def test_statements_span_lines_and_end_at_semicolons():
    text = "select *\n  from kv\n where v = 'a;b' -- c;\n;insert into kv values (1, 'x'); select 1;"
    assert split_commands(text) == [
        Command("sql", "select *\n  from kv\n where v = 'a;b' -- c;"),
        Command("sql", "insert into kv values (1, 'x')"),
        Command("sql", "select 1"),
    ]


def test_directives_need_no_semicolon_and_are_case_insensitive():
    text = """
-- a comment
SHOW tables
describe kv;
Help
LOAD CLASSES procs/voter.py;
remove classes voter.*
file -batch 'my ddl.sql'
file other.sql;
exec Put 1 'one'; exec Get 1
execute Get 2
quit
"""
    assert split_commands(text) == [
        Command("show", "tables"), Command("describe", "kv"), Command("help", "Help"),
        Command("load_classes", "procs/voter.py"), Command("remove_classes", "voter.*"),
        Command("file_batch", "my ddl.sql"), Command("file", "other.sql"),
        Command("exec", "Put 1 'one'"), Command("exec", "Get 1"), Command("exec", "Get 2"),
        Command("exit", ""),
    ]


def test_inline_batch_runs_up_to_its_terminator_line():
    text = ("file -inlinebatch END_OF_BATCH\nCREATE TABLE a (x INT);\n-- END_OF_BATCH is "
            "not alone here\nCREATE TABLE b (y INT);\nEND_OF_BATCH\nselect 1;")
    assert split_commands(text) == [
        Command("batch", "CREATE TABLE a (x INT);\n-- END_OF_BATCH is not alone here\n"
                         "CREATE TABLE b (y INT);"),
        Command("sql", "select 1"),
    ]
    with pytest.raises(SqlcmdError, match="no closing line 'END'"):
        split_commands("file -inlinebatch END\nCREATE TABLE a (x INT);\n")


def test_open_statement_is_pending_and_runs_at_end_of_input():
    sp = ScriptSplitter()
    assert sp.feed("select 'it''s") == []
    assert sp.pending
    assert sp.feed("; still quoted'") == []
    assert sp.feed("from kv") == []
    assert sp.finish() == [Command("sql", "select 'it''s\n; still quoted'\nfrom kv")]
    assert not sp.pending
    assert split_commands("-- only a comment\n/* and\nanother */") == []


def test_voter_ddl_splits_into_two_batches_and_a_class_load():
    cmds = split_commands((VOTER / "ddl.sql").read_text())
    assert [c.kind for c in cmds] == ["batch", "load_classes", "batch"]
    assert "CREATE VIEW v_votes_by_phone_number" in cmds[0].text
    assert cmds[1].text == "voter-procs.jar"
    assert cmds[2].text.count("CREATE PROCEDURE") == 5


# --------------------------------------------------------------------------- exec arguments

def test_exec_arguments_like_sqlcmd():
    proc, args = parse_exec_args("Vote 5085551234, 3 'it''s, quoted' \"dq\" NULL null "
                                 "-1.50 2e3 word 'NULL'")
    assert proc == "Vote"
    assert args == [5085551234, 3, "it's, quoted", "dq", None, None, Decimal("-1.50"), 2000.0,
                    "word", "NULL"]
    assert parse_exec_args("@Statistics TABLE 0") == ("@Statistics", ["TABLE", 0])
    assert parse_exec_args("Results") == ("Results", [])
    for bad in ("", "'Quoted'", "Proc 'open"):
        with pytest.raises(SqlcmdError):
            parse_exec_args(bad)


def test_partition_argument_takes_the_column_type():
    assert coerce_partition_arg("42", int(VoltType.BIGINT)) == 42
    assert coerce_partition_arg(Decimal(7), int(VoltType.INTEGER)) == 7
    assert coerce_partition_arg(42, int(VoltType.STRING)) == "42"
    assert coerce_partition_arg("0aFF", int(VoltType.VARBINARY)) == b"\x0a\xff"
    assert coerce_partition_arg("x", int(VoltType.BIGINT)) == "x"   # the server says why
    assert coerce_partition_arg(None, int(VoltType.BIGINT)) is None


# --------------------------------------------------------------------------- output

TABLE = VoltTable([Column("ID", VoltType.BIGINT), Column("NAME", VoltType.STRING),
                   Column("PRICE", VoltType.DECIMAL)],
                  [(1, "apple", Decimal("1.500000000000")), (20, None, None),
                   (3, "a, \"b\"", Decimal("-2.000000000000"))])


def test_fixed_format_pads_columns_and_right_aligns_numbers():
    assert format_table(TABLE) == (
        "ID NAME   PRICE\n"
        "-- ------ ---------------\n"
        " 1 apple   1.500000000000\n"
        "20 NULL   NULL\n"
        ' 3 a, "b" -2.000000000000\n')


def test_csv_and_tab_formats():
    assert format_table(TABLE, "csv") == (
        'ID,NAME,PRICE\n1,apple,1.500000000000\n20,NULL,NULL\n3,"a, ""b""",-2.000000000000\n')
    assert format_table(TABLE, "tab", header=False) == (
        "1\tapple\t1.500000000000\n20\tNULL\tNULL\n3\ta, \"b\"\t-2.000000000000\n")


def test_command_line_options():
    p = sqlcmd.build_parser()
    a = p.parse_args(["--servers=h1,h2:5", "--port", "7", "--output-format=CSV",
                      "--stop-on-error", "false", "--query=select 1", "x.sql"])
    assert (a.servers, a.port, a.output_format, a.stop_on_error, a.query, a.files) == \
        ("h1,h2:5", 7, "csv", False, "select 1", ["x.sql"])
    with pytest.raises(SystemExit):
        p.parse_args(["--stop-on-error", "maybe"])


# --------------------------------------------------------------------------- real servers

def _env():
    env = dict(os.environ)
    env["TZ"] = "UTC"
    return env


def _sqlcmd(port, *args, stdin=None, cwd=None):
    """Run ``python -m voltdb_py.sqlcmd`` as a user would (a real process)."""
    return subprocess.run(
        [sys.executable, "-m", "voltdb_py.sqlcmd", "--servers", f"127.0.0.1:{port}", *args],
        input=stdin, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=90)


def _run(port, script, *args):
    out, err = io.StringIO(), io.StringIO()
    code = sqlcmd.main(["--servers", f"127.0.0.1:{port}", *args], stdin=io.StringIO(script),
                       stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_voter_example_loads_through_sqlcmd_like_a_user_does(tmp_path):
    with TempServer(sites_per_host=3) as srv:
        port = srv.client_port
        # 1. the procedure classes, 2. the schema from stdin, 3. a script of calls.
        r = _sqlcmd(port, "--query", "LOAD CLASSES voter.py;", cwd=VOTER)
        assert (r.returncode, r.stdout, r.stderr) == (0, "Command succeeded.\n", "")
        r = _sqlcmd(port, stdin=(VOTER / "ddl.sql").read_text())
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Command succeeded.\n" * 2
        assert "LOAD CLASSES voter-procs.jar" in r.stderr and "skipped" in r.stderr
        script = tmp_path / "vote.sql"
        script.write_text(f"""
exec Initialize 6 '{CONTESTANTS}';
exec Vote 5085551234 3 2;
exec Vote 5085551234, 3, 2
exec Vote 5085551234 3 2;   -- over the limit of 2 votes per phone
exec Vote 6175550000 5 2;
exec Results;
select contestant_number, num_votes from v_votes_by_contestant_number_state
 order by contestant_number;
""")
        r = _sqlcmd(port, str(script))
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        out = r.stdout
        assert "numContestants\n--------------\n             6\n\n(Returned 1 rows in " in out
        # Vote answers 0 (accepted) twice, then 2 (over the limit), then 0.
        assert [line for line in out.splitlines() if line in ("0", "1", "2")] == \
            ["0", "0", "2", "0"]
        assert "CONTESTANT_NAME CONTESTANT_NUMBER TOTAL_VOTES\n" in out
        assert "Kelly Clauss                    3           2\n" in out
        assert "Alana Bregman                   5           1\n" in out
        with Client(f"127.0.0.1:{port}") as c:
            assert c.call("@AdHoc", "SELECT COUNT(*) FROM votes").tables[0].scalar() == 3
            assert c.call("Results").tables[0].rows[0][0] == "Kelly Clauss"


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_one_script_with_file_directives_and_classes(tmp_path):
    pkg = tmp_path / "shop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "procs.py").write_text(
        "from voltdb_py.procedures import SQLStmt, VoltProcedure\n"
        "class Count(VoltProcedure):\n"
        "    q = SQLStmt('SELECT COUNT(*) AS n FROM kv')\n"
        "    def run(self):\n"
        "        self.queue_sql(self.q)\n"
        "        return self.execute_sql()\n")
    (tmp_path / "schema.sql").write_text(KV)
    (tmp_path / "main.sql").write_text("""
file schema.sql
load classes shop
CREATE PROCEDURE FROM CLASS shop.procs.Count;
exec Put 1 'one';
exec Put '2' two;
exec Count;
show classes
""")
    with TempServer(sites_per_host=2) as srv:
        code, out, err = _run(srv.client_port, "", str(tmp_path / "main.sql"))
        assert (code, err) == (0, "")
        assert out.count("Command succeeded.") == 6   # 4 DDL + load classes + the CREATE
        assert "N\n-\n2\n\n(Returned 1 rows in " in out
        assert "--- Active Procedure Classes" in out and "shop.procs.Count\n" in out


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_results_errors_and_exit_codes():
    with TempServer(schema=KV, sites_per_host=2) as srv:
        port = srv.client_port
        code, out, err = _run(port, "", "--query", """
insert into kv values (1, 'one');
insert into kv values (2, NULL);
update kv set v = 'x';
select k, v from kv order by k;
""")
        assert (code, err) == (0, "")
        assert out.count("\n(Returned 1 rows in ") == 2
        assert "\n(Returned 2 rows in " in out
        assert "K V\n- -\n1 x\n2 x\n" in out
        # A failing statement: the server's message on stderr, exit 255, the rest skipped.
        code, out, err = _run(port, "", "--query",
                              "insert into kv values (1, 'dup'); select * from kv;")
        assert code == sqlcmd.EXIT_FAILURE
        assert "constraint" in err.lower() or "unique" in err.lower()
        assert out == ""
        # stop-on-error false: the failure is reported and the next statement runs.
        code, out, err = _run(port, "", "--stop-on-error=false", "--output-format=csv",
                              "--query", "exec NoSuchProc 1; select k from kv order by k;")
        assert code == 0
        assert err == "Procedure NoSuchProc was not found\n"
        assert out.startswith("K\n1\n2\n(Returned 2 rows in ")
        code, out, err = _run(port, "", "--output-format", "tab", "--output-skip-metadata",
                              "--query", "select k, v from kv order by k; "
                                         "CREATE TABLE t2 (a INT);")
        assert (code, out, err) == (0, "1\tx\n2\tx\n", "")
        code, out, err = _run(port, "describe kv\nshow tables\nshow procedures\n"
                                    "describe nosuch\n", "--stop-on-error=false")
        assert "COLUMN DATATYPE SIZE NULLABLE REMARKS" in out
        assert "K      BIGINT     63 NO       PARTITION_COLUMN" in out
        assert "--- User Tables " in out and "\nKV\nT2\n" in out
        assert "--- User Procedures " in out and "\nGet\nPut\n" in out
        assert err == "Table nosuch does not exist\n"
        # DDL error and a bad LOAD CLASSES file.
        code, out, err = _run(port, "CREATE TABLE kv (a INT);\n")
        assert code == sqlcmd.EXIT_FAILURE and "KV" in err.upper() and out == ""
        code, out, err = _run(port, "load classes /nonexistent/x.py\n")
        assert code == sqlcmd.EXIT_FAILURE and "file not found" in err


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_interactive_shell_and_uploaded_class_errors(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def oops(:\n")
    lines = iter(["select", "  k from kv;  exec Put 5 'five'", "", "  -- nothing",
                  f"load classes {bad}", "exec Get 5;", "help", "exit", "select 1;"])
    prompts = []

    def read_line(prompt):
        prompts.append(prompt)
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    with TempServer(schema=KV, sites_per_host=2) as srv, \
            Client(f"127.0.0.1:{srv.client_port}") as c:
        out, err = io.StringIO(), io.StringIO()
        session = sqlcmd.Session(c, out, err)
        session.interactive(read_line)
        text = out.getvalue()
        assert prompts[:3] == ["1> ", "1> ", "3> "]
        assert len(prompts) == 8                       # "select 1;" after exit is not read
        assert "K\n-\n\n(Returned 0 rows in " in text
        assert "V\n----\nfive\n" in text
        assert "exec[ute] <proc>" in text
        assert "@UpdateClasses failed" in err.getvalue()
        assert "broken" in err.getvalue()
        assert session.errors == 1


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_connection_failures_exit_with_a_message(tmp_path):
    r = subprocess.run([sys.executable, "-m", "voltdb_py.sqlcmd", "--servers", "127.0.0.1",
                        "--port", "1", "--query", "select 1;"], capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 255
    assert "Unable to connect to VoltDB cluster 127.0.0.1:1" in r.stderr
    users = {"admin": ("secret", "administrator"), "bob": ("pw", "user")}
    dep = deployment_xml(2, users=users, security=True)
    with TempServer(schema=KV, deployment=dep) as srv:
        code, out, err = _run(srv.client_port, "", "--user", "admin", "--password", "wrong",
                              "--query", "select 1;")
        assert code == 255 and "Authentication rejected" in err
        code, out, err = _run(srv.client_port, "", "--user", "admin", "--password", "secret",
                              "--query", "select count(*) from kv;")
        assert code == 0 and "(Returned 1 rows in " in out
        voter = str(VOTER / "voter.py")
        code, out, err = _run(srv.client_port, f"load classes {voter}\n", "--user", "bob",
                              "--password", "pw")
        assert code == 255 and "does not have admin permission" in err
        code, out, err = _run(srv.client_port, f"load classes {voter}\nshow classes\n",
                              "--user", "admin", "--password", "secret")
        assert code == 0 and "\nvoter.Vote\n" in out
