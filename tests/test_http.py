# SPDX-License-Identifier: AGPL-3.0-or-later
"""VoltDB's JSON HTTP API (voltdb_py.node.http): a real aiohttp server on 127.0.0.1 in
front of a real embedded Database, driven with aiohttp's client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from contextlib import contextmanager
from typing import Any

import pytest

aiohttp = pytest.importorskip("aiohttp")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltdb_py import Database
from voltdb_py.deployment import parse_deployment
from voltdb_py.node.http import (
    make_http_app,
    parse_parameters,
    start_http_server,
    stop_http_server,
)

SCHEMA = """
CREATE TABLE alltypes (
  id BIGINT NOT NULL PRIMARY KEY,
  ti TINYINT, si SMALLINT, i INTEGER, bi BIGINT, f FLOAT,
  s VARCHAR(32), ts TIMESTAMP, d DECIMAL, b VARBINARY(16)
);
PARTITION TABLE alltypes ON COLUMN id;
CREATE TABLE notes (k VARCHAR(16) NOT NULL PRIMARY KEY, n INTEGER);
CREATE PROCEDURE InsertAll PARTITION ON TABLE alltypes COLUMN id AS
  INSERT INTO alltypes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
CREATE PROCEDURE GetAll PARTITION ON TABLE alltypes COLUMN id AS
  SELECT * FROM alltypes WHERE id = ?;
CREATE PROCEDURE CountAll AS SELECT COUNT(*) FROM alltypes;
CREATE PROCEDURE PutNote AS UPSERT INTO notes VALUES (?, ?);
"""

PROCS = '''
from voltdb_py import VoltProcedure, VoltAbortException, VoltTable, Column, VoltType


class Abort(VoltProcedure):
    def run(self, msg: str):
        self.set_app_status_code(7)
        self.set_app_status_string("seven")
        raise VoltAbortException(msg)


class Flagged(VoltProcedure):
    def run(self, n: int):
        self.set_app_status_code(3)
        self.set_app_status_string("flag")
        return n * 2


class EchoTable(VoltProcedure):
    def run(self, table):
        return table


class SumArray(VoltProcedure):
    def run(self, values):
        return VoltTable([Column("N", VoltType.BIGINT), Column("TOTAL", VoltType.BIGINT)],
                         [(len(values), sum(values))])
'''

SECURE_DEPLOYMENT = """<?xml version="1.0"?>
<deployment>
  <cluster sitesperhost="2"/>
  <security enabled="true"/>
  <users>
    <user name="admin" password="s3cret" roles="administrator"/>
    <user name="reader" password="pw" roles="user"/>
  </users>
</deployment>
"""

NOJSON_DEPLOYMENT = """<?xml version="1.0"?>
<deployment>
  <cluster sitesperhost="2"/>
  <httpd><jsonapi enabled="false"/></httpd>
</deployment>
"""

ENVELOPE_KEYS = ["status", "appstatus", "statusstring", "appstatusstring", "results"]


# ---------------------------------------------------------------------------------------
# A real server in a background event loop; requests from aiohttp's client
# ---------------------------------------------------------------------------------------

class Server:
    """An aiohttp server on 127.0.0.1:0 run by its own event loop in a thread."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, self.port = self._run(start_http_server(app, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.port}/api/1.0/"
        self.base = f"http://127.0.0.1:{self.port}"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        try:
            self._run(stop_http_server(self.runner))
            self._run(self.loop.shutdown_default_executor())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()


async def _request(method: str, url: str, **kw: Any) -> tuple[int, str, str]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.request(method, url, **kw) as r:
        return r.status, r.content_type, await r.text()


def request(method: str, url: str, **kw: Any) -> tuple[int, str, str]:
    return asyncio.run(_request(method, url, **kw))


def get(server: Server, **params: Any) -> tuple[int, dict]:
    status, ctype, text = request("GET", server.url, params=params)
    assert ctype == "application/json"
    return status, json.loads(text)


def post(server: Server, data: Any, **kw: Any) -> tuple[int, dict]:
    status, ctype, text = request("POST", server.url, data=data, **kw)
    assert ctype == "application/json"
    return status, json.loads(text)


def call(server: Server, procedure: str, *params: Any, method: str = "GET") -> dict:
    fields = {"Procedure": procedure, "Parameters": json.dumps(list(params))}
    status, doc = get(server, **fields) if method == "GET" else post(server, fields)
    assert status == 200
    assert list(doc) == ENVELOPE_KEYS
    return doc


def db_call(db: Database):
    def call_fn(procedure: str, params: tuple, *, user: str | None) -> Any:
        return db.call(procedure, *params)
    return call_fn


@contextmanager
def serving(db: Database, **kw: Any):
    server = Server(make_http_app(db_call(db), **kw))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def db(tmp_path):
    mod = tmp_path / "httpprocs.py"
    mod.write_text(PROCS)
    with Database.open(tmp_path / "db", 2) as d:
        d.execute_ddl(SCHEMA)
        d.load_classes(mod)
        d.execute_ddl("CREATE PROCEDURE FROM CLASS httpprocs.Abort;"
                      "CREATE PROCEDURE FROM CLASS httpprocs.Flagged;"
                      "CREATE PROCEDURE FROM CLASS httpprocs.EchoTable;"
                      "CREATE PROCEDURE FROM CLASS httpprocs.SumArray;")
        yield d


@pytest.fixture
def server(db):
    with serving(db) as s:
        yield s


# ---------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------

ROW = [1, 7, -300, 70000, 2**40, 1.25, "héllo", 1_700_000_000_123_456, "12.5", "00ff10"]
ROW_JSON = [1, 7, -300, 70000, 2**40, 1.25, "héllo", 1_700_000_000_123_456,
            "12.500000000000", "00FF10"]
SCHEMA_JSON = [{"name": n, "type": t} for n, t in [
    ("ID", 6), ("TI", 3), ("SI", 4), ("I", 5), ("BI", 6), ("F", 8), ("S", 9), ("TS", 11),
    ("D", 22), ("B", 25)]]


def test_get_and_post_calls(server):
    doc = call(server, "InsertAll", *ROW)
    assert doc["status"] == 1 and doc["appstatus"] == -128
    assert doc["statusstring"] is None and doc["appstatusstring"] is None
    assert doc["results"] == [{"status": -128, "schema": [{"name": "modified_tuples",
                                                           "type": 6}], "data": [[1]]}]
    for method in ("GET", "POST"):
        doc = call(server, "GetAll", 1, method=method)
        assert doc["results"] == [{"status": -128, "schema": SCHEMA_JSON, "data": [ROW_JSON]}]
    # no Parameters at all: a procedure without parameters
    doc = call(server, "CountAll")
    assert doc["results"][0]["data"] == [[1]]
    status, doc = get(server, Procedure="CountAll")
    assert status == 200 and doc["results"][0]["data"] == [[1]]


def test_raw_body_layout_and_headers(server):
    call(server, "InsertAll", *ROW)
    status, ctype, text = request("GET", server.url, params={"Procedure": "GetAll",
                                                             "Parameters": "[1]"})
    assert status == 200 and ctype == "application/json"
    assert text.startswith('{"status":1,"appstatus":-128,"statusstring":null,'
                           '"appstatusstring":null,"results":[{"status":-128,"schema":[')
    assert text.isascii() and "h\\u00e9llo" in text


def test_every_type_round_trips_with_nulls(server):
    call(server, "InsertAll", *ROW)
    call(server, "InsertAll", 2, *[None] * 9)
    # "\N" is VoltDB's NULL; TIMESTAMP from a date-time string; DECIMAL from a number
    call(server, "InsertAll", 3, "\\N", -127, -2147483647, "-9223372036854775807", -1.5e300,
         "", "2024-02-29 12:34:56.000001", -0.25, "")
    doc = call(server, "@AdHoc", "SELECT * FROM alltypes ORDER BY id")
    assert doc["results"][0]["schema"] == SCHEMA_JSON
    assert doc["results"][0]["data"] == [
        ROW_JSON,
        [2] + [None] * 9,
        [3, None, -127, -2147483647, -9223372036854775807, -1.5e300, "",
         1709210096000001, "-0.250000000000", ""],
    ]


def test_adhoc_with_parameters_and_system_catalog(server):
    call(server, "InsertAll", *ROW)
    doc = call(server, "@AdHoc", "SELECT s, d FROM alltypes WHERE id = ? AND bi > ?", 1, 5)
    assert doc["results"][0]["data"] == [["héllo", "12.500000000000"]]
    doc = call(server, "@AdHoc", "UPDATE alltypes SET s = ? WHERE id = ?", "x", 1)
    assert doc["results"][0]["data"] == [[1]]
    doc = call(server, "@SystemCatalog", "TABLES")
    assert doc["status"] == 1
    res = doc["results"][0]
    names = [c["name"] for c in res["schema"]]
    assert "TABLE_NAME" in names
    tables = {row[names.index("TABLE_NAME")] for row in res["data"]}
    assert {"ALLTYPES", "NOTES"} <= tables
    assert call(server, "@Ping")["status"] == 1


def test_failure_statuses_in_json(server):
    call(server, "InsertAll", *ROW)
    doc = call(server, "InsertAll", *ROW)  # duplicate primary key
    assert doc["status"] == -2 and "CONSTRAINT" in doc["statusstring"].upper()
    assert doc["results"] == []
    doc = call(server, "InsertAll", 5, "not a number", *[None] * 8)
    assert doc["status"] == -2
    doc = call(server, "GetAll")  # wrong parameter count
    assert doc["status"] == -2
    doc = call(server, "NoSuchProcedure", 1)
    assert doc["status"] == -3 and "was not found" in doc["statusstring"]
    doc = call(server, "Abort", "refused by the procedure")
    assert doc["status"] == -1
    assert doc["statusstring"] == "refused by the procedure"
    assert doc["appstatus"] == 7 and doc["appstatusstring"] == "seven"
    doc = call(server, "Flagged", 21)
    assert doc["status"] == 1 and doc["appstatus"] == 3 and doc["appstatusstring"] == "flag"
    assert doc["results"] == [{"status": -128, "schema": [{"name": "", "type": 6}],
                               "data": [[42]]}]
    doc = call(server, "@AdHoc", "SELECT nope FROM alltypes")
    assert doc["status"] == -2


def test_array_and_table_parameters(server):
    doc = call(server, "SumArray", [1, 2, 3, 4])
    assert doc["results"][0]["data"] == [[4, 10]]
    table = {"status": -128,
             "schema": [{"name": "A", "type": 5}, {"name": "T", "type": 11},
                        {"name": "D", "type": 22}, {"name": "B", "type": 25},
                        {"name": "S", "type": 9}],
             "data": [[1, 1_000_000, "2.5", "CAFE", "x"], [None, None, None, None, None]]}
    doc = call(server, "EchoTable", table)
    assert doc["status"] == 1
    assert doc["results"] == [{"status": -128, "schema": table["schema"],
                               "data": [[1, 1_000_000, "2.500000000000", "CAFE", "x"],
                                        [None] * 5]}]


def test_jsonp_wrapping_and_bad_callbacks(server):
    status, ctype, text = request("GET", server.url,
                                  params={"Procedure": "@Ping", "jsonp": "cb_1$"})
    assert status == 200 and ctype == "application/javascript"
    assert text.startswith("cb_1$( {") and text.endswith("} )")
    assert json.loads(text[len("cb_1$( "):-2])["status"] == 1
    # errors are wrapped too
    status, _, text = request("GET", server.url, params={"jsonp": "cb"})
    assert status == 400 and text.startswith("cb( ")
    # the callback may come as a header, or in a POST body
    status, _, text = request("GET", server.url, params={"Procedure": "@Ping"},
                              headers={"jsonp": "hdr"})
    assert status == 200 and text.startswith("hdr( ")
    status, _, text = request("POST", server.url, data={"Procedure": "@Ping", "jsonp": "pb"})
    assert status == 200 and text.startswith("pb( ")
    for bad in ("alert(1)", "a.b", "x;y", "<script>", "a b", "é"):
        status, ctype, text = request("GET", server.url,
                                      params={"Procedure": "@Ping", "jsonp": bad})
        assert status == 400 and ctype == "application/json", bad
        doc = json.loads(text)
        assert doc["status"] == -3 and "jsonp" in doc["statusstring"]
        status, _, text = request("POST", server.url, data={"Procedure": "@Ping", "jsonp": bad})
        assert status == 400 and json.loads(text)["status"] == -3


@pytest.mark.parametrize("params", [
    "[1", "{}", "5", '"abc"', "", "[NaN]", "[Infinity]", "[[1, [2]]]", "[[{}]]",
    '[{"schema": []}]', '[{"schema": [{"name": "A", "type": 99}], "data": []}]',
    '[{"schema": [{"name": "A", "type": 5}], "data": [[1, 2]]}]',
    '[{"schema": [{"name": "A", "type": 5}], "data": [["x"]]}]',
    "[" * 1000 + "]" * 1000,  # a GET URL stays under aiohttp's 8190-byte request line
])
def test_bad_parameters_are_400(server, params):
    for method in ("GET", "POST"):
        fields = {"Procedure": "GetAll", "Parameters": params}
        status, doc = get(server, **fields) if method == "GET" else post(server, fields)
        assert status == 400, (method, params)
        assert list(doc) == ENVELOPE_KEYS
        assert doc["status"] == -3 and doc["results"] == []
        assert doc["statusstring"].startswith("failed to parse invocation parameters")


def test_deep_nesting_in_a_post_body_is_400(server):
    status, doc = post(server, {"Procedure": "GetAll",
                                "Parameters": "[" * 100_000 + "]" * 100_000})
    assert status == 400 and "nests deeper" in doc["statusstring"]


def test_request_errors(server):
    status, doc = get(server)
    assert status == 400 and doc["statusstring"] == "Procedure parameter is missing"
    status, doc = get(server, Parameters="[1]")
    assert status == 400
    status, doc = post(server, {"Parameters": "[1]"})
    assert status == 400 and doc["statusstring"] == "Procedure parameter is missing"
    status, doc = post(server, b"", headers={"Content-Type":
                                             "application/x-www-form-urlencoded"})
    assert status == 200 and doc["status"] == -3
    assert doc["statusstring"] == "Received POST with no parameters in the body."
    for path in ("/", "/api/1.0/other", "/api/2.0/", "/favicon.ico"):
        status, ctype, text = request("GET", server.base + path)
        assert status == 404 and ctype == "application/json"
        assert "/api/1.0/" in json.loads(text)["statusstring"]
    status, ctype, text = request("PUT", server.url, data=b"x")
    assert status == 405 and json.loads(text)["status"] == -3
    for qt in ("0", "-5", "abc", "1.5"):
        status, doc = get(server, Procedure="@Ping", Querytimeout=qt)
        assert status == 400 and "Querytimeout" in doc["statusstring"]
    status, doc = get(server, Procedure="@Ping", Querytimeout="1000")
    assert status == 200 and doc["status"] == 1
    # the API path without its trailing slash answers too
    status, _, text = request("GET", server.base + "/api/1.0", params={"Procedure": "@Ping"})
    assert status == 200 and json.loads(text)["status"] == 1
    status, doc = post(server, b"Procedure=%FF%FE", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400


def test_oversize_body_refused(db):
    with serving(db, max_body_bytes=1024) as server:
        small = {"Procedure": "@AdHoc", "Parameters": json.dumps(["SELECT 1 FROM notes"])}
        assert post(server, small)[1]["status"] == 1
        big = {"Procedure": "PutNote", "Parameters": json.dumps(["k", 1, "x" * 2000])}
        status, doc = post(server, big)
        assert status == 200 and doc["status"] == -3 and doc["results"] == []
        assert "Invalid Parameter data length" in doc["statusstring"]

        async def chunks():  # no Content-Length: streamed, cut at the limit
            for _ in range(20):
                yield b"Parameters=" + b"1" * 200 + b"&"

        status, doc = post(server, chunks(), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and "Invalid Parameter data length" in doc["statusstring"]
        # the server still answers afterwards, and nothing was written
        assert call(server, "@AdHoc", "SELECT COUNT(*) FROM notes")["results"][0]["data"] \
            == [[0]]


def test_multipart_post(server):
    form = aiohttp.FormData({"Procedure": "SumArray", "Parameters": "[[5, 6]]"},
                            default_to_multipart=True)
    status, doc = post(server, form)
    assert status == 200 and doc["results"][0]["data"] == [[2, 11]]


def test_json_api_disabled_is_403(db):
    with serving(db, deployment=parse_deployment(NOJSON_DEPLOYMENT)) as server:
        status, doc = get(server, Procedure="@Ping")
        assert status == 403 and doc["status"] == -3


# ---------------------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------------------

def test_security(db):
    seen: list[tuple[str, Any, bool]] = []

    def call_fn(procedure: str, params: tuple, *, user: str | None, admin: bool = False):
        seen.append((procedure, user, admin))
        return db.call(procedure, *params)

    dep = parse_deployment(SECURE_DEPLOYMENT)
    server = Server(make_http_app(call_fn, deployment=dep))
    try:
        def attempt(method: str = "GET", headers: dict | None = None, **creds: str):
            fields = {"Procedure": "@Ping", **creds}
            if method == "GET":
                status, ctype, text = request("GET", server.url, params=fields,
                                              headers=headers)
            else:
                status, ctype, text = request("POST", server.url, data=fields,
                                              headers=headers)
            assert ctype == "application/json"
            doc = json.loads(text)
            assert list(doc) == ENVELOPE_KEYS
            return status, doc

        sha1 = hashlib.sha1(b"s3cret").hexdigest()
        sha256 = hashlib.sha256(b"s3cret").hexdigest()
        refused = [
            {},
            {"User": "admin"},
            {"User": "admin", "Password": "wrong"},
            {"User": "nobody", "Password": "s3cret"},
            {"User": "Admin", "Password": "s3cret"},
            {"User": "admin", "Hashedpassword": hashlib.sha256(b"wrong").hexdigest()},
            {"User": "admin", "Hashedpassword": sha1[:-1]},
            {"User": "admin", "Hashedpassword": "zz" * 20},
            {"User": "admin", "Hashedpassword": sha256.upper()[:-2] + "00"},
            {"User": "reader", "Password": "pw", "admin": "true"},
        ]
        for creds in refused:
            for method in ("GET", "POST"):
                status, doc = attempt(method, **creds)
                assert status == 401, creds
                assert doc["status"] == -3 and doc["results"] == []
        assert seen == []
        accepted = [
            {"User": "admin", "Password": "s3cret"},
            {"User": "admin", "Hashedpassword": sha1},
            {"User": "admin", "Hashedpassword": sha256.upper()},
            # Hashedpassword wins over a wrong Password
            {"User": "admin", "Password": "wrong", "Hashedpassword": sha256},
            {"User": "reader", "Password": "pw"},
            {"User": "admin", "Password": "s3cret", "admin": "true"},
        ]
        for creds in accepted:
            for method in ("GET", "POST"):
                status, doc = attempt(method, **creds)
                assert status == 200 and doc["status"] == 1, creds
        assert seen[-1] == ("@Ping", "admin", True)
        assert seen[-3] == ("@Ping", "reader", False)
        basic = base64.b64encode(b"admin:s3cret").decode()
        status, _ = attempt(headers={"Authorization": f"Basic {basic}"})
        assert status == 200
        bad = base64.b64encode(b"admin:nope").decode()
        assert attempt(headers={"Authorization": f"Basic {bad}"})[0] == 401
        assert attempt(headers={"Authorization": "Basic !!!"})[0] == 401
        assert attempt(headers={"Authorization": f"Hashed reader:{hashlib.sha1(b'pw').hexdigest()}"}
                       )[0] == 200
        assert attempt(headers={"Authorization": "Hashed reader:00"})[0] == 401
        # a procedure call with good credentials reaches the database
        status, _, text = request("GET", server.url, params={
            "Procedure": "InsertAll", "Parameters": json.dumps(ROW),
            "User": "reader", "Password": "pw"})
        assert status == 200 and json.loads(text)["status"] == 1
    finally:
        server.close()


# ---------------------------------------------------------------------------------------
# Async callables and timeouts
# ---------------------------------------------------------------------------------------

def test_async_call_and_request_timeout(db):
    timeouts: list[Any] = []

    async def call_fn(procedure: str, params: tuple, *, user: str | None,
                      timeout_ms: int | None = None):
        if procedure == "Slow":
            await asyncio.sleep(10)
        timeouts.append(timeout_ms)
        if procedure == "Broken":
            raise RuntimeError("the node is on fire")
        if procedure == "NotAResponse":
            return 42
        return db.call(procedure, *params)

    server = Server(make_http_app(call_fn, request_timeout_s=0.2))
    try:
        assert call(server, "@Ping")["status"] == 1
        doc = call(server, "Slow")
        assert doc["status"] == -6 and doc["statusstring"] == "Request Timeout"
        doc = call(server, "Broken")
        assert doc["status"] == -3 and "the node is on fire" in doc["statusstring"]
        doc = call(server, "NotAResponse")
        assert doc["status"] == -3
        status, doc = get(server, Procedure="@Ping", Querytimeout="1234")
        assert status == 200 and doc["status"] == 1
        assert timeouts[0] is None and timeouts[-1] == 1234
    finally:
        server.close()


def test_make_http_app_arguments():
    with pytest.raises(ValueError):
        make_http_app(lambda p, a, *, user: None, max_body_bytes=0)
    assert parse_parameters('[1, 2.5, "a", null, "\\\\N", [1, "b"]]') == (
        1, 2.5, "a", None, None, [1, "b"])


# ---------------------------------------------------------------------------------------
# Hypothesis: random parameter arrays never crash the server
# ---------------------------------------------------------------------------------------

_scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
            | st.sampled_from(["\\N", "00ff", "2024-01-01 00:00:00", "1.5", "-0"]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(["schema", "data", "status", "x"]),
                                       inner, max_size=3), max_leaves=12)
_tables = st.builds(
    lambda types, rows: {"status": -128,
                         "schema": [{"name": f"C{i}", "type": t} for i, t in enumerate(types)],
                         "data": rows},
    st.lists(st.sampled_from([3, 4, 5, 6, 8, 9, 11, 22, 25, 1, 0, 7]), min_size=1,
             max_size=3),
    st.lists(st.lists(_scalars, min_size=1, max_size=3), max_size=3))
_params = st.one_of(
    st.lists(_json | _tables, max_size=11).map(json.dumps),
    st.text(max_size=60),
    st.sampled_from(["[", "[1,]", "[NaN]", "[1e999]", '["\\ud800"]', "[-0.0]", "null"]))
_procedures = st.sampled_from(["InsertAll", "GetAll", "CountAll", "PutNote", "@AdHoc",
                               "Abort", "EchoTable", "SumArray", "@SystemCatalog", "@Ping",
                               "Nope", "", "@Nope"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(procedure=_procedures, params=_params, method=st.sampled_from(["GET", "POST"]))
def test_random_parameters_always_get_a_json_answer(server, procedure, params, method):
    fields = {"Procedure": procedure, "Parameters": params}
    if method == "GET":
        status, ctype, text = request("GET", server.url, params=fields)
    else:
        status, ctype, text = request("POST", server.url, data=fields)
    assert ctype == "application/json"
    assert status in (200, 400)
    doc = json.loads(text)
    assert list(doc) == ENVELOPE_KEYS
    if status == 400:
        assert doc["status"] == -3
    else:
        assert doc["status"] in (1, -1, -2, -3)
        for table in doc["results"]:
            assert set(table) == {"status", "schema", "data"}
    # the server is still healthy
    assert call(server, "@Ping")["status"] == 1
