# SPDX-License-Identifier: AGPL-3.0-or-later
"""VoltDB's JSON HTTP API (voltdb-wire-protocol.md section 13) on aiohttp.

Example::

    from voltdb_py import Database
    from voltdb_py.node.http import make_http_app, start_http_server, stop_http_server

    db = Database.open("/tmp/db")
    app = make_http_app(lambda proc, params, *, user: db.call(proc, *params))
    runner, port = await start_http_server(app, "127.0.0.1", 8080)
    # GET http://127.0.0.1:8080/api/1.0/?Procedure=@Ping
    await stop_http_server(runner)

Requests: ``GET`` (query string) or ``POST`` (``application/x-www-form-urlencoded`` or
``multipart/form-data`` body; query-string keys win over body keys) to ``/api/1.0/`` with
the case-sensitive keys ``Procedure`` (required), ``Parameters`` (a JSON array),
``User``, ``Password``, ``Hashedpassword``, ``admin``, ``jsonp`` and ``Querytimeout``.
Credentials may instead come in an ``Authorization: Basic ...`` or
``Authorization: Hashed user:hexdigest`` header; ``jsonp`` may also be a header.

Parameters become Python values, left for the procedure to coerce as it does for the
binary protocol: JSON integers are ``int``, other numbers ``float``, strings ``str``
(the exact string ``"\\N"`` is SQL NULL, as in VoltDB), ``null`` is ``None``, an array
of scalars is a ``list``, and an object in VoltDB's table form
``{"schema":[{"name":..,"type":code}],"data":[[..]]}`` is a :class:`VoltTable` whose
cells are converted to their column types (TIMESTAMP as a naive UTC ``datetime``,
DECIMAL as ``Decimal``, VARBINARY as ``bytes`` from hex). A DECIMAL sent as a JSON
number goes through ``float``; send DECIMALs as strings to keep every digit.

Responses are always JSON (HTTP 200 for every procedure outcome, the status is in the
body), laid out as VoltDB does::

    {"status":1,"appstatus":-128,"statusstring":null,"appstatusstring":null,
     "results":[{"status":-128,"schema":[{"name":"N","type":6}],"data":[[42]]}]}

Values in ``data``: integers as numbers, FLOAT as a number (a non-finite value as
``null``, JSON having no NaN), STRING as a string, TIMESTAMP as integer microseconds
since the epoch (UTC), DECIMAL as a string in plain notation with 12 fractional digits
(``"1.500000000000"``), VARBINARY as an upper-case hex string, SQL NULL as ``null``.
Output is ASCII-only JSON (non-ASCII characters as ``\\uXXXX`` escapes), so every answer
is valid UTF-8 and safe inside a JSONP ``<script>``.

HTTP-level errors carry the same shape with status -3 and ``results: []``:

==============================================  ======  ==================================
condition                                        HTTP    statusstring
==============================================  ======  ==================================
no ``Procedure``                                 400     Procedure parameter is missing
``Parameters`` not a JSON array of values        400     failed to parse invocation
                                                         parameters: ...
bad ``jsonp`` name / bad ``Querytimeout``        400     ...
bad credentials (security enabled)               401     Authenticate failed: ...
``admin=true`` for a non-administrator           401     Permission denied ...
JSON API disabled in the deployment              403     JSON API is disabled
other paths under ``/api/1.0/``, and ``/``       404     Resource not found ...
methods other than GET and POST                  405     ...
POST without a body                              200     Received POST with no parameters
                                                         in the body.
body over ``max_body_bytes`` (2 MB default)      200     Invalid Parameter data length ...
==============================================  ======  ==================================
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import decimal
import hashlib
import hmac
import inspect
import json
import math
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web

from voltdb_py.errors import DatabaseClosedError, TypeMismatchError, ValueOutOfRangeError
from voltdb_py.types import (
    APP_STATUS_UNSET,
    DECIMAL_QUANTUM,
    ClientResponse,
    Column,
    Status,
    VoltTable,
    VoltType,
    coerce,
    micros_to_datetime,
    timestamp_micros,
)

__all__ = [
    "API_PATH",
    "DEFAULT_MAX_BODY_BYTES",
    "CallFn",
    "ParameterParseError",
    "make_http_app",
    "parse_parameters",
    "response_json",
    "start_http_server",
    "stop",
    "stop_http_server",
]

#: The one path VoltDB's JSON API serves.
API_PATH = "/api/1.0/"
#: VoltDB refuses POST bodies over 2 MB.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
#: How deep a ``Parameters`` JSON document may nest (array of arrays of table rows ...).
MAX_JSON_DEPTH = 32
#: At most this many form fields are parsed from a body.
MAX_FORM_FIELDS = 64

#: ``call(procedure, params, *, user=...)``; may also accept ``admin=`` and ``timeout_ms=``.
CallFn = Callable[..., Any]  # returns ClientResponse or Awaitable[ClientResponse]

_JSONP_RE = re.compile(r"[a-zA-Z0-9_$]*")
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_CONTENT_TYPE = "application/json"
_JSONP_CONTENT_TYPE = "application/javascript"
_NULL_STRING = "\\N"  # VoltDB's (and its CSV loader's) spelling of SQL NULL


# ---------------------------------------------------------------------------------------
# Parameters: JSON -> Python values
# ---------------------------------------------------------------------------------------

class ParameterParseError(ValueError):
    """``Parameters`` is not a JSON array of values VoltDB accepts (HTTP 400)."""


def _reject_constant(name: str) -> Any:
    raise ParameterParseError(f"{name} is not a valid JSON value")


def _depth_ok(text: str) -> bool:
    """True when text's bracket nesting stays within MAX_JSON_DEPTH (guards json.loads)."""
    depth = 0
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_parameters(text: str) -> tuple:
    """Parse the ``Parameters`` value into the procedure's Python parameters.

    :raises ParameterParseError: not JSON, not an array, or an element VoltDB refuses
        (arrays of arrays, objects that are not VoltDB tables, NaN/Infinity).
    """
    if not _depth_ok(text):
        raise ParameterParseError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ParameterParseError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ParameterParseError(str(exc)) from None
    if not isinstance(doc, list):
        raise ParameterParseError(f"expected a JSON array, got {_json_kind(doc)}")
    return tuple(_param(v, i + 1) for i, v in enumerate(doc))


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _scalar(v: Any, where: str) -> Any:
    if isinstance(v, str):
        return None if v == _NULL_STRING else v
    if v is None or isinstance(v, (bool, int, float)):
        return v
    raise ParameterParseError(f"{where} is {_json_kind(v)}, which is not a scalar value")


def _param(v: Any, pos: int) -> Any:
    where = f"parameter {pos}"
    if isinstance(v, list):
        return [_scalar(x, f"element {j} of {where}") for j, x in enumerate(v)]
    if isinstance(v, dict):
        return _table_param(v, where)
    return _scalar(v, where)


def _table_param(obj: dict, where: str) -> VoltTable:
    """A VoltTable from its JSON form {"status":..,"schema":[..],"data":[[..]]}."""
    schema = obj.get("schema")
    data = obj.get("data", [])
    extra = set(obj) - {"status", "schema", "data"}
    if extra:
        raise ParameterParseError(f"{where}: unknown table keys {sorted(extra)}")
    if not isinstance(schema, list) or not schema:
        raise ParameterParseError(f"{where}: a table needs a non-empty \"schema\" array")
    if not isinstance(data, list):
        raise ParameterParseError(f"{where}: a table's \"data\" must be an array of rows")
    columns = []
    for k, col in enumerate(schema):
        if not isinstance(col, dict) or not isinstance(col.get("name", ""), str):
            raise ParameterParseError(f"{where}: schema entry {k} must be "
                                      "{\"name\": string, \"type\": code}")
        code = col.get("type")
        vtype = None
        if isinstance(code, int) and not isinstance(code, bool) and \
                code in VoltType._value2member_map_:
            vtype = VoltType(code)
        if vtype is None or vtype is VoltType.NULL:
            raise ParameterParseError(
                f"{where}: schema entry {k} has an unsupported type code {code!r}")
        columns.append(Column(col.get("name", ""), vtype))
    rows = []
    for r, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ParameterParseError(
                f"{where}: row {r} must be an array of {len(columns)} values")
        out = []
        for c, (col, cell) in enumerate(zip(columns, row)):
            if isinstance(cell, (list, dict, bool)):
                raise ParameterParseError(
                    f"{where}: row {r} column {c} is {_json_kind(cell)}, not a {col.type.name}")
            if cell == _NULL_STRING:
                cell = None
            try:
                value = coerce(col.type, cell, what=f"row {r} column {c}")
            except (TypeMismatchError, ValueOutOfRangeError) as exc:
                raise ParameterParseError(f"{where}: {exc}") from None
            if value is not None and col.type is VoltType.TIMESTAMP:
                value = micros_to_datetime(value)
            out.append(value)
        rows.append(tuple(out))
    return VoltTable(columns, rows)


# ---------------------------------------------------------------------------------------
# Responses: ClientResponse -> VoltDB's JSON
# ---------------------------------------------------------------------------------------

def _cell(vtype: VoltType, v: Any) -> Any:
    """One result value the way VoltDB's JSON renders it (see the module docstring)."""
    if v is None:
        return None
    if vtype is VoltType.TIMESTAMP:
        try:
            return timestamp_micros(v)
        except TypeMismatchError:
            return str(v)
    if vtype is VoltType.DECIMAL:
        return _decimal_text(v)
    if vtype is VoltType.VARBINARY:
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v).hex().upper()
        return str(v)
    return _generic(v)


def _decimal_text(v: Any) -> str:
    try:
        d = v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
        if d.is_finite():
            return format(d.quantize(DECIMAL_QUANTUM,
                                     context=decimal.Context(prec=80)), "f")
    except (decimal.InvalidOperation, ValueError):
        pass
    return str(v)


def _generic(v: Any) -> Any:
    """A value in a column whose declared type did not predict it: render it sensibly."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, decimal.Decimal):
        return _decimal_text(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex().upper()
    if isinstance(v, (_dt.datetime, _dt.date)):
        return timestamp_micros(v)
    return str(v)


def _table_json(t: VoltTable) -> dict:
    cols = list(t.columns)
    types = [c.type if isinstance(c.type, VoltType) else None for c in cols]
    data = []
    for row in t.rows:
        data.append([_cell(vt, v) if vt is not None else _generic(v)
                     for vt, v in zip(types, row)])
    return {
        "status": -128,
        "schema": [{"name": c.name, "type": int(c.type)} for c in cols],
        "data": data,
    }


def response_json(resp: ClientResponse) -> dict:
    """A ClientResponse as VoltDB's JSON object (keys in VoltDB's order)."""
    return {
        "status": int(resp.status),
        "appstatus": int(resp.app_status),
        "statusstring": resp.status_string,
        "appstatusstring": resp.app_status_string,
        "results": [_table_json(t) for t in resp.tables],
    }


def _error_json(message: str, status: int = Status.UNEXPECTED_FAILURE) -> dict:
    return {"status": int(status), "appstatus": APP_STATUS_UNSET, "statusstring": message,
            "appstatusstring": None, "results": []}


def _dumps(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ---------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------

class _HttpError(Exception):
    def __init__(self, http_status: int, message: str,
                 status: int = Status.UNEXPECTED_FAILURE) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.status = status


def _accepts(fn: Callable, name: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return True
        if p.name == name and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                         inspect.Parameter.POSITIONAL_OR_KEYWORD):
            return True
    return False


def _is_async(fn: Callable) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    method = type(fn).__dict__.get("__call__") if not inspect.isroutine(fn) else None
    return method is not None and inspect.iscoroutinefunction(method)


class _Api:
    def __init__(self, call: CallFn, deployment: Any, max_body_bytes: int,
                 request_timeout_s: float | None, run_sync_in_thread: bool) -> None:
        self.call = call
        self.is_async = _is_async(call)
        self.pass_admin = _accepts(call, "admin")
        self.pass_timeout = _accepts(call, "timeout_ms")
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s
        self.run_sync_in_thread = run_sync_in_thread
        self.security = bool(deployment is not None and deployment.security.enabled)
        self.jsonapi_enabled = bool(deployment is None or deployment.httpd.jsonapi_enabled)
        self.users: dict[str, tuple[bytes, bytes | None, bool]] = {}
        if deployment is not None:
            from voltdb_py.deployment import user_digests
            for u in deployment.users:
                sha1, sha256 = user_digests(u)
                admin = any(r.lower() == "administrator" for r in u.roles)
                self.users[u.name] = (sha1, sha256, admin)

    # ---------------------------------------------------------------- plumbing

    def _reply(self, doc: dict, jsonp: str | None, http_status: int = 200) -> web.Response:
        body = _dumps(doc)
        if jsonp:
            return web.Response(text=f"{jsonp}( {body} )", status=http_status,
                                content_type=_JSONP_CONTENT_TYPE, charset="utf-8",
                                headers={"X-Content-Type-Options": "nosniff"})
        return web.Response(text=body, status=http_status, content_type=_CONTENT_TYPE,
                            charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})

    async def _form(self, request: web.Request) -> dict[str, str]:
        """The request's parameters: query string, then (for POST) the body's fields."""
        params: dict[str, str] = {}
        for k, v in request.query.items():
            params.setdefault(k, v)
        if request.method != "POST":
            return params
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _HttpError(200, f"Invalid Parameter data length: the body of {length} "
                                  f"bytes exceeds the limit of {self.max_body_bytes} bytes.")
        if request.content_type == "multipart/form-data":
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                raise _HttpError(200, "Invalid Parameter data length: the body exceeds the "
                                      f"limit of {self.max_body_bytes} bytes.") from None
            except ValueError as exc:
                raise _HttpError(400, f"malformed multipart body: {exc}") from None
            if not form:
                raise _HttpError(200, "Received POST with no parameters in the body.")
            for k, v in form.items():
                if isinstance(v, str):
                    params.setdefault(k, v)
            return params
        parts: list[bytes] = []
        size = 0
        while size <= self.max_body_bytes:  # bounded: each read returns >= 1 byte or EOF
            chunk = await request.content.read(self.max_body_bytes + 1 - size)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        raw = b"".join(parts)
        if size > self.max_body_bytes:
            raise _HttpError(200, "Invalid Parameter data length: the body exceeds the "
                                  f"limit of {self.max_body_bytes} bytes.")
        if not raw.strip():
            raise _HttpError(200, "Received POST with no parameters in the body.")
        try:
            text = raw.decode("utf-8")
            fields = urllib.parse.parse_qsl(text, keep_blank_values=True,
                                            max_num_fields=MAX_FORM_FIELDS,
                                            encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _HttpError(400, "the request body is not valid UTF-8") from None
        except ValueError as exc:
            raise _HttpError(400, f"malformed form body: {exc}") from None
        for k, v in fields:
            params.setdefault(k, v)
        return params

    def _authenticate(self, request: web.Request, params: dict[str, str]) -> str | None:
        """The authenticated user name (None with security off). Raises 401."""
        if not self.security:
            return None
        user = params.get("User")
        password = params.get("Password")
        hashed = params.get("Hashedpassword")
        if user is None:
            header = request.headers.get("Authorization", "")
            scheme, _, cred = header.partition(" ")
            cred = cred.strip()
            if scheme.lower() == "basic" and cred:
                try:
                    decoded = base64.b64decode(cred, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    raise _HttpError(401, "Authenticate failed: malformed Basic "
                                          "Authorization header") from None
                user, sep, password = decoded.partition(":")
                if not sep:
                    raise _HttpError(401, "Authenticate failed: malformed Basic "
                                          "Authorization header")
            elif scheme.lower() == "hashed" and cred:
                user, sep, hashed = cred.partition(":")
                if not sep:
                    raise _HttpError(401, "Authenticate failed: malformed Hashed "
                                          "Authorization header")
        if not user:
            raise _HttpError(401, "Authenticate failed: security is enabled; send User and "
                                  "Password (or Hashedpassword)")
        entry = self.users.get(user)
        sha1, sha256, _admin = entry if entry is not None else (b"\0" * 20, b"\0" * 32, False)
        if hashed is not None:
            if not _HEX_RE.fullmatch(hashed) or len(hashed) not in (40, 64):
                raise _HttpError(401, "Authenticate failed: Hashedpassword must be a 40 (SHA-1) "
                                      "or 64 (SHA-256) character hex digest")
            given = bytes.fromhex(hashed)
            expected = sha1 if len(given) == 20 else sha256
        elif password is not None:
            given = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
            expected = sha256
            if expected is None:  # a SHA-1-only masked password
                given = hashlib.sha1(password.encode("utf-8", "surrogatepass")).digest()
                expected = sha1
        else:
            raise _HttpError(401, "Authenticate failed: no Password or Hashedpassword given")
        ok = expected is not None and hmac.compare_digest(given, expected)
        if entry is None or not ok:
            raise _HttpError(401, "Authenticate failed: wrong user name or password")
        return user

    async def _invoke(self, procedure: str, params: tuple, user: str | None, admin: bool,
                      timeout_ms: int | None) -> ClientResponse:
        kwargs: dict[str, Any] = {"user": user}
        if self.pass_admin:
            kwargs["admin"] = admin
        if self.pass_timeout and timeout_ms is not None:
            kwargs["timeout_ms"] = timeout_ms
        if self.is_async:
            result = self.call(procedure, params, **kwargs)
        elif self.run_sync_in_thread:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                None, lambda: self.call(procedure, params, **kwargs))
        else:
            result = self.call(procedure, params, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    # ---------------------------------------------------------------- handlers

    async def api(self, request: web.Request) -> web.Response:
        jsonp: str | None = None
        try:
            if request.method not in ("GET", "POST"):
                raise _HttpError(405, f"Method {request.method} is not allowed; use GET or "
                                      "POST")
            # jsonp first, so every later error is wrapped as the caller asked
            jsonp_raw = request.query.get("jsonp", request.headers.get("jsonp"))
            if jsonp_raw is not None:
                if not _JSONP_RE.fullmatch(jsonp_raw):
                    raise _HttpError(400, "Invalid jsonp callback function name")
                jsonp = jsonp_raw or None
            if not self.jsonapi_enabled:
                raise _HttpError(403, "JSON API is disabled")
            params = await self._form(request)
            if jsonp is None and "jsonp" in params:
                cb = params["jsonp"]
                if not _JSONP_RE.fullmatch(cb):
                    raise _HttpError(400, "Invalid jsonp callback function name")
                jsonp = cb or None
            user = self._authenticate(request, params)
            admin = params.get("admin", "").strip().lower() == "true"
            if admin and self.security and not self.users[user][2]:
                raise _HttpError(401, f"Permission denied: user {user} is not an "
                                      "administrator and cannot use admin=true")
            timeout_ms = None
            if "Querytimeout" in params:
                qt = params["Querytimeout"].strip()
                if not re.fullmatch(r"[0-9]{1,10}", qt) or not 0 < int(qt) <= 2**31 - 1:
                    raise _HttpError(400, "Invalid Querytimeout value: it must be a positive "
                                          "integer number of milliseconds")
                timeout_ms = int(qt)
            procedure = params.get("Procedure")
            if procedure is None or not procedure.strip():
                raise _HttpError(400, "Procedure parameter is missing")
            args: tuple = ()
            if "Parameters" in params:
                try:
                    args = parse_parameters(params["Parameters"])
                except ParameterParseError as exc:
                    raise _HttpError(400, f"failed to parse invocation parameters: {exc}") \
                        from None
            try:
                coro = self._invoke(procedure, args, user, admin, timeout_ms)
                if self.request_timeout_s is not None:
                    resp = await asyncio.wait_for(coro, self.request_timeout_s)
                else:
                    resp = await coro
            except asyncio.TimeoutError:
                raise _HttpError(200, "Request Timeout", Status.CONNECTION_TIMEOUT) from None
            except DatabaseClosedError as exc:
                raise _HttpError(200, f"Server is unavailable: {exc}",
                                 Status.SERVER_UNAVAILABLE) from None
            except Exception as exc:  # noqa: BLE001 - any failure becomes a JSON answer
                raise _HttpError(200, f"unexpected error calling {procedure}: "
                                      f"{type(exc).__name__}: {exc}") from None
            if not isinstance(resp, ClientResponse):
                raise _HttpError(200, f"unexpected error calling {procedure}: the call "
                                      f"returned {type(resp).__name__}, not a ClientResponse")
            try:
                doc = response_json(resp)
                return self._reply(doc, jsonp)
            except (TypeError, ValueError) as exc:
                raise _HttpError(200, f"unexpected error encoding the response of "
                                      f"{procedure}: {exc}") from None
        except _HttpError as err:
            return self._reply(_error_json(err.message, err.status), jsonp, err.http_status)

    async def not_found(self, request: web.Request) -> web.Response:
        return self._reply(_error_json(
            f"Resource not found: {request.path}. The JSON API is served at {API_PATH} "
            f"(for example {API_PATH}?Procedure=@Ping)"), None, 404)


def make_http_app(call: CallFn, *, deployment: Any = None,
                  max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                  request_timeout_s: float | None = None,
                  run_sync_in_thread: bool = True) -> web.Application:
    """Build the aiohttp application of VoltDB's JSON API.

    :param call: ``call(procedure, params, *, user)`` returning a :class:`ClientResponse`,
        sync or async. It is also passed ``admin=`` (bool) and ``timeout_ms=`` (the
        request's Querytimeout) when its signature accepts them. A sync callable runs in
        the loop's default executor unless ``run_sync_in_thread`` is False.
    :param deployment: a :class:`~voltdb_py.deployment.Deployment`; its security and
        users decide authentication, its ``<httpd><jsonapi enabled>`` whether the API
        answers (403 otherwise). None: no security.
    :param max_body_bytes: largest POST body accepted (VoltDB: 2 MB).
    :param request_timeout_s: answer status -6 "Request Timeout" when a call takes
        longer (the call itself is not cancelled if it runs in a thread). None: wait.
    """
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or \
            max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a positive int, not {max_body_bytes!r}")
    api = _Api(call, deployment, max_body_bytes, request_timeout_s, run_sync_in_thread)
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", "/api/1.0/", api.api)
    app.router.add_route("*", "/api/1.0", api.api)
    app.router.add_route("*", "/{tail:.*}", api.not_found)
    return app


async def start_http_server(app: web.Application, host: str = "127.0.0.1",
                            port: int = 8080) -> tuple[web.AppRunner, int]:
    """Serve app on host:port (0 picks a free port); return the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                bound = addr[1]
                break
    except BaseException:
        await runner.cleanup()
        raise
    return runner, bound


async def stop_http_server(runner: web.AppRunner) -> None:
    """Stop serving and close every connection (idempotent)."""
    await runner.cleanup()


#: Short name of :func:`stop_http_server`.
stop = stop_http_server
