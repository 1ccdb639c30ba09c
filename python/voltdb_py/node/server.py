# SPDX-License-Identifier: AGPL-3.0-or-later
"""The server: VoltDB's client wire protocol over asyncio in front of an embedded Database.

One process is one host. Each connection logs in (voltdb-wire-protocol.md §3), then sends
invocations. Every read is split into all the complete frames it holds, each frame is
decoded with the compiled codec and executed in order, and the responses of one read go
out in one write. A connection whose unsent responses pass the transport's high-water
mark stops being read until they drain (TCP pushes back on the client).

Transactions run on the event loop thread, one at a time: the embedded Database is
serial, as a VoltDB site is. The server itself answers the system procedures that
describe the cluster (@Ping, @SystemInformation, @Statistics TOPO, @Subscribe, bulk load,
@Shutdown); everything else goes to the Database.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import itertools
import logging
import os
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from voltdb_py import hashinator as _hashinator
from voltdb_py import wire
from voltdb_py._version import __version__
from voltdb_py.deployment import Deployment, user_digests
from voltdb_py.engine import _engine
from voltdb_py.errors import CodecError, DatabaseClosedError, VoltError
from voltdb_py.node.mesh import set_nodelay
from voltdb_py.node.root import ClusterState
from voltdb_py.types import ClientResponse, Column, Status, VoltTable, VoltType

_server_intake = _engine.server_intake
_encode_call_answers = _engine.encode_call_answers

log = logging.getLogger("voltdb_py.node")

MP_INITIATOR_PID = 16383
AUTH_TIMEOUT_S = 30.0
#: A connection that does not read its responses for this long is dropped (VoltDB's
#: CLIENT_HANGUP_TIMEOUT).
CLIENT_HANGUP_TIMEOUT_S = 30.0
#: Pushes are checked this often besides right after catalog changes (VoltDB's
#: TOPOLOGY_CHANGE_CHECK_MS).
TOPOLOGY_CHECK_S = 5.0
#: The login frame is tiny; refuse to buffer more than this before authentication.
MAX_LOGIN_FRAME_BYTES = 64 * 1024
WRITE_HIGH_WATER_BYTES = 4 * 1024 * 1024
WRITE_LOW_WATER_BYTES = 1024 * 1024
BUILD_STRING = f"{__version__} voltdb_py"
#: VoltDB's answer to a write while the cluster is paused (admin mode).
PAUSED_MESSAGE = "Server is paused and is available in read-only mode - please try again later."
#: System procedures that write (refused from non-admin connections while paused).
_WRITE_SYSPROCS = frozenset({"@LOADSINGLEPARTITIONTABLE", "@LOADMULTIPARTITIONTABLE",
                             "@UPDATECLASSES"})

S, I, B, TI = VoltType.STRING, VoltType.INTEGER, VoltType.BIGINT, VoltType.TINYINT
_INT_WIDTHS = {VoltType.TINYINT: 1, VoltType.SMALLINT: 2, VoltType.INTEGER: 4,
               VoltType.BIGINT: 8}


def _table(spec: list[tuple[str, VoltType]], rows: list[tuple]) -> VoltTable:
    return VoltTable([Column(n, t) for n, t in spec], rows)


def _graceful(msg: str) -> ClientResponse:
    return ClientResponse(Status.GRACEFUL_FAILURE, msg)


def parse_endpoint(text: str | None, default_port: int,
                   default_host: str = "") -> tuple[str, int]:
    """Parse VoltDB's ``[ip:]port`` interface option into (host, port); '' means every address.

    :raises ValueError: not a port in 0..65535.
    """
    if text is None or text == "":
        return default_host, default_port
    host, sep, port = text.rpartition(":")
    if not sep:
        host = default_host
    host = host.strip("[]")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not [ip:]port with a port in 0..65535")
    return host, int(port)


@dataclass
class ServerConfig:
    """Where and how a node serves."""

    client: tuple[str, int] = ("", 21212)
    admin: tuple[str, int] = ("", 21211)
    host_id: int = 0
    auth_timeout_s: float = AUTH_TIMEOUT_S
    hangup_timeout_s: float = CLIENT_HANGUP_TIMEOUT_S
    max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES
    # VoltDB's JSON HTTP API: (ip, port), or None for the deployment's <httpd> settings.
    http: tuple[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: Invocations taken from a connection's queue at a time: their consecutive user-procedure
#: calls share one group commit, and their answers go out in one write before the next
#: group runs. Small groups let the client work on the first answers while the server
#: runs the rest, so the two processes overlap instead of taking turns (measured with 64
#: calls in flight on 2 cores: about twice the rate of answering 128 calls at once).
ANSWER_CHUNK = 16


class Caller:
    """What dispatch() needs of a connection: for a JSON API call, or for a call another
    cluster host routed here (it passed that host's checks: admin)."""

    __slots__ = ("user", "admin", "local", "subscribed")

    def __init__(self, user: str | None, admin: bool) -> None:
        self.user = user
        self.admin = admin
        self.local = None
        self.subscribed = False


class _Users:
    """Login checks against the deployment's users (only when security is enabled)."""

    def __init__(self, deployment: Deployment) -> None:
        self.enabled = deployment.security.enabled
        self._digests: dict[str, tuple[bytes, bytes | None, tuple[str, ...]]] = {}
        for u in deployment.users:
            sha1, sha256 = user_digests(u)
            self._digests[u.name] = (sha1, sha256, tuple(r.lower() for r in u.roles))

    def check(self, user: str, scheme: int, digest: bytes) -> bool:
        """Whether digest (SHA-1 for scheme 0, SHA-256 for 1) is user's password hash."""
        if not self.enabled:
            return True
        entry = self._digests.get(user)
        if entry is None:
            return False
        want = entry[0] if scheme == wire.HASH_SHA1 else entry[1]
        return want is not None and hmac.compare_digest(want, digest)

    def is_admin(self, user: str) -> bool:
        """Whether user may run administrative procedures."""
        if not self.enabled:
            return True
        entry = self._digests.get(user)
        return entry is not None and ("administrator" in entry[2] or "admin" in entry[2])


class Connection(asyncio.Protocol):
    """One client (or admin) connection: login, then pipelined invocations."""

    def __init__(self, node: NodeServer, admin: bool) -> None:
        self.node = node
        self.admin = admin
        self.transport: asyncio.Transport | None = None
        self.frames = wire.FrameBuffer(MAX_LOGIN_FRAME_BYTES)
        self.user: str | None = None
        self.connection_id = 0
        self.subscribed = False
        self.peer: Any = None
        self.local: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused_at: float | None = None
        self.closed = False
        self.write_paused = False
        self.pending: deque[bytes] = deque()

    # -- asyncio callbacks

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        set_nodelay(transport)
        transport.set_write_buffer_limits(WRITE_HIGH_WATER_BYTES, WRITE_LOW_WATER_BYTES)
        self.node.connections.add(self)
        self._timer = self.node.loop.call_later(self.node.config.auth_timeout_s,
                                                self._auth_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.node.connections.discard(self)

    def pause_writing(self) -> None:
        # Too many responses queued: stop reading and executing this connection's requests
        # until the client catches up (TCP then pushes back on the client).
        self.write_paused = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()
            self._paused_at = time.monotonic()
            self._timer = self.node.loop.call_later(self.node.config.hangup_timeout_s,
                                                    self._hangup_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._paused_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.closed and not self.node.stopping:
            self.transport.resume_reading()
            if self.pending:
                self.node.loop.call_soon(self._drain)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except CodecError as exc:
            self.abort(f"bad frame: {exc}")
            return
        if not frames:
            return
        if self.user is None:
            frames = self._login(frames)
            if not frames:
                return
        if self.pending:
            self.pending.extend(frames)
        else:
            self.pending = deque(frames)
        self._drain()

    def _drain(self) -> None:
        """Execute queued requests in order, ANSWER_CHUNK at a time, each group's answers
        written with one write; stop while the transport is full (pause_writing)."""
        node = self.node
        pending = self.pending
        while pending and not self.write_paused and not self.closed:
            if len(pending) <= ANSWER_CHUNK:
                bodies = list(pending)
                pending.clear()
            else:
                bodies = [pending.popleft() for _ in range(ANSWER_CHUNK)]
            out = node.execute_frames(self, bodies)
            if self.closed:
                pending.clear()
                return
            if self.transport is not None and out:
                self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        node.after_batch()

    # -- helpers

    def abort(self, why: str) -> None:
        """Drop the connection at once (protocol violation)."""
        log.warning("closing connection %s (%s): %s", self.connection_id, self.peer, why)
        print(f"voltdb-py: closing connection from {self.peer}: {why}", file=sys.stderr,
              flush=True)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _auth_timeout(self) -> None:
        if self.user is None and not self.closed:
            self.send(wire.encode_login_failure(wire.LOGIN_TIMEOUT))
            self.abort("no login within the authentication timeout")

    def _hangup_timeout(self) -> None:
        if self._paused_at is not None and not self.closed:
            self.abort("client did not read its responses in time")

    def _fail_login(self, code: int, why: str) -> None:
        self.send(wire.encode_login_failure(code))
        log.warning("login refused from %s: %s", self.peer, why)
        self.closed = True
        if self.transport is not None:
            self.transport.close()  # flush the failure code, then close

    def _login(self, frames: list[bytes]) -> list[bytes] | None:
        """Handle the login frame; return the frames after it, or None when closed."""
        try:
            version, scheme, service, user, digest = wire.decode_login(frames[0])
        except CodecError as exc:
            self._fail_login(wire.LOGIN_PROTOCOL_VIOLATION, f"malformed login: {exc}")
            return None
        if scheme not in (wire.HASH_SHA1, wire.HASH_SHA256):
            self._fail_login(wire.LOGIN_PROTOCOL_VIOLATION, f"unknown hash scheme {scheme}")
            return None
        if len(digest) != wire.DIGEST_LENGTHS[scheme]:
            self._fail_login(wire.LOGIN_AUTH_FAILED, "wrong password digest length")
            return None
        if service != "database":
            self._fail_login(wire.LOGIN_UNKNOWN_SERVICE, f"unknown service {service!r}")
            return None
        if self.node.stopping:
            self._fail_login(wire.LOGIN_AUTH_FAILED, "the server is shutting down")
            return None
        if not self.node.users.check(user, scheme, digest):
            self._fail_login(wire.LOGIN_AUTH_FAILED, f"bad user name or password for {user!r}")
            return None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.user = user
        self.connection_id = next(self.node.connection_ids)
        self.frames.max_frame_bytes = self.node.config.max_frame_bytes
        self.send(wire.encode_login_response(
            0, self.node.host_id, self.connection_id, self.node.start_ms,
            self.node.leader_ipv4, BUILD_STRING))
        return frames[1:]


class NodeServer:
    """One host of a voltdb_py cluster serving VoltDB's client protocol.

    :param db: the open embedded :class:`~voltdb_py.Database` (closed by :meth:`stop`).
    :param deployment: the parsed deployment (users, security, settings).
    :param cluster: the cluster metadata (topology, hashinator version) of the root.
    """

    def __init__(self, db: Any, deployment: Deployment, cluster: ClusterState,
                 config: ServerConfig | None = None) -> None:
        self.db = db
        self.deployment = deployment
        self.cluster = cluster
        self.config = config or ServerConfig()
        self.host_id = self.config.host_id
        self.users = _Users(deployment)
        self.connections: set[Connection] = set()
        self.connection_ids = itertools.count(1)
        self.start_ms = int(time.time() * 1000)
        self.leader_ipv4 = 0x7F000001
        self.hostname = socket.gethostname()
        self.stopping = False
        self.paused = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._servers: list[asyncio.base_events.Server] = []
        self.client_address: tuple[str, int] = ("", 0)
        self.admin_address: tuple[str, int] = ("", 0)
        self._stopped: asyncio.Event | None = None
        self._topo_cache: dict[int, tuple[Any, list[VoltTable]]] = {}
        self._pushed_topo: bytes | None = None
        self._pushed_catalog: int | None = None
        self._check_task: asyncio.Task | None = None
        self._http_runner: Any = None
        self.http_address: tuple[str, int] | None = None
        #: The cluster side (voltdb_py.node.cluster.ClusterHost) of a multi-host cluster;
        #: None for a one-host server, which runs every call here.
        self.cluster_host: Any = None
        self.exit_code = 0
        self._handlers = {
            "@PING": self._ping,
            "@SYSTEMINFORMATION": self._system_information,
            "@STATISTICS": self._statistics,
            "@SUBSCRIBE": self._subscribe,
            "@LOADSINGLEPARTITIONTABLE": self._load_single,
            "@LOADMULTIPARTITIONTABLE": self._load_multi,
            "@SHUTDOWN": self._shutdown,
            "@PAUSE": self._pause,
            "@RESUME": self._resume,
            "@UPDATECLASSES": self._update_classes,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the client and admin listeners (port 0 picks a free port)."""
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for admin, (host, port) in ((False, self.config.client), (True, self.config.admin)):
            srv = await self.loop.create_server(
                lambda admin=admin: Connection(self, admin), host or None, port,
                reuse_address=True, backlog=1024)
            self._servers.append(srv)
            addr = srv.sockets[0].getsockname()[:2]
            if admin:
                self.admin_address = (host, addr[1])
            else:
                self.client_address = (host, addr[1])
        ip = self.client_address[0]
        if ip and ip not in ("0.0.0.0", "::"):
            try:
                self.leader_ipv4 = struct.unpack(">I", socket.inet_aton(ip))[0]
            except OSError:
                pass
        self._pushed_topo = self._topo_signature()
        self._pushed_catalog = self.db.catalog.version
        await self._start_http()
        self._check_task = self.loop.create_task(self._periodic_check())

    async def _start_http(self) -> None:
        """Serve VoltDB's JSON API when the deployment enables <httpd> (port from --http)."""
        httpd = self.deployment.httpd
        if not httpd.enabled:
            return
        from voltdb_py.node.http import make_http_app, start_http_server
        host, port = self.config.http if self.config.http is not None else ("", httpd.port)
        # Calls run on the event-loop thread, in order with the wire protocol's calls.
        app = make_http_app(self._http_call, deployment=self.deployment,
                            run_sync_in_thread=False)
        self._http_runner, bound = await start_http_server(app, host or "0.0.0.0", port)
        self.http_address = (host, bound)

    def _http_call(self, procedure: str, params: tuple, *, user: str | None = None,
                   admin: bool = False) -> Any:
        """One JSON API call, dispatched like a wire-protocol call from that user (in a
        cluster: routed, and the answer is awaitable)."""
        conn = Caller(user, admin)
        if procedure.upper() == "@SUBSCRIBE":
            return _graceful("@Subscribe is not available over HTTP")
        if self.cluster_host is not None:
            return self.cluster_host.call(conn, procedure, params)
        return self.dispatch(conn, procedure, params, {})  # type: ignore[arg-type]

    def readiness(self) -> dict[str, Any]:
        """The machine-readable readiness record (printed and written to ready.json)."""
        return {"client": self.client_address[1], "admin": self.admin_address[1],
                "http": self.http_address[1] if self.http_address else None,
                "client_interface": self.client_address[0] or "0.0.0.0",
                "admin_interface": self.admin_address[0] or "0.0.0.0",
                "pid": os.getpid(), "host_id": self.host_id,
                "partitions": self.db.partition_count, "build": BUILD_STRING}

    def request_stop(self) -> None:
        """Begin a clean shutdown (signal handlers and @Shutdown call this)."""
        if self.stopping:
            return
        self.stopping = True
        self.loop.create_task(self.stop())

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop listening, let queued responses flush, close connections and the database."""
        self.stopping = True
        if self._check_task is not None:
            self._check_task.cancel()
        for srv in self._servers:
            srv.close()
        if self._http_runner is not None:
            from voltdb_py.node.http import stop_http_server
            runner, self._http_runner = self._http_runner, None
            try:
                await asyncio.wait_for(stop_http_server(runner), grace_s)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - best effort
                log.exception("stopping the HTTP listener failed")
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.pause_reading()
                c.transport.close()  # sends what is buffered first
        deadline = time.monotonic() + grace_s
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.abort()
        if self.cluster_host is not None:
            try:
                await self.cluster_host.stop(leave=True)
            except Exception:  # noqa: BLE001 - best effort
                log.exception("leaving the cluster failed")
        for srv in self._servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - best effort
                pass
        self.db.close()
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has finished."""
        assert self._stopped is not None
        await self._stopped.wait()

    # ------------------------------------------------------------------ execution

    def execute_frame(self, conn: Connection, body: bytes) -> bytes:
        """Decode, run and encode one invocation (b"" when the connection was dropped)."""
        out = self.execute_frames(conn, [body])
        return out[0] if out else b""

    def execute_frames(self, conn: Connection, bodies: list[bytes]) -> list[bytes]:
        """Run a batch of invocations in order; consecutive user-procedure calls share one
        group commit (Database.run_many), so their answers follow one LMDB commit.

        Returns the response frames in order (a group's answers in one bytes).

        In a multi-host cluster the calls are routed instead (ClusterHost.execute_frames):
        answers from other hosts are written to the connection when they arrive."""
        if self.cluster_host is not None:
            return self.cluster_host.execute_frames(conn, bodies)
        out: list[bytes] = []
        t0 = time.monotonic()
        i, n = 0, len(bodies)
        while i < n:
            decoded = None
            if not self.stopping and not self.paused:
                # The plain user calls from i on, decoded in one compiled loop, then run
                # as one group; it stops at the first other frame.
                calls: list[tuple[str, tuple, int]] = []
                i, decoded = _server_intake(bodies, i, calls)
                if calls:
                    out.append(self._run_group(calls, t0))
                if i >= n:
                    break
            body = bodies[i]
            i += 1
            if decoded is None:
                try:
                    decoded = wire.decode_invocation(body)
                except wire.InvocationError as exc:
                    out.append(wire.encode_response(
                        exc.client_handle, Status.UNEXPECTED_FAILURE,
                        f"Malformed invocation: {exc}"))
                    continue
                except CodecError as exc:
                    conn.abort(f"unreadable invocation: {exc}")
                    return out
            proc, handle, params, ext = decoded
            resp = self._safe_dispatch(conn, proc, params, ext)
            out.append(self._encode(handle, proc, resp, int((time.monotonic() - t0) * 1000)))
            if conn.closed:
                return out
        return out

    def _run_group(self, calls: list[tuple[str, tuple, int]], t0: float) -> bytes:
        """Run (procedure, params, handle) calls as one group; their answers' frames."""
        try:
            resps = self.db.run_many(calls)
        except DatabaseClosedError:
            resps = [ClientResponse(Status.SERVER_UNAVAILABLE, "Server is shutting down.")
                     for _ in calls]
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            log.exception("group of %d calls failed", len(calls))
            resps = [ClientResponse(Status.UNEXPECTED_FAILURE,
                                    f"unexpected error: {type(exc).__name__}: {exc}")
                     for _ in calls]
        # the whole group's frames in one compiled call; a result that cannot be encoded
        # is answered with an error saying why
        return _encode_call_answers(calls, resps, int((time.monotonic() - t0) * 1000))

    def _safe_dispatch(self, conn: Connection, proc: str, params: tuple,
                       ext: dict[str, Any]) -> ClientResponse:
        """dispatch(), with every failure turned into an answer (never a dropped call)."""
        try:
            return self.dispatch(conn, proc, params, ext)
        except DatabaseClosedError:
            return ClientResponse(Status.SERVER_UNAVAILABLE, "Server is shutting down.")
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            log.exception("procedure %s failed", proc)
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"unexpected error in {proc}: {type(exc).__name__}: {exc}")

    @staticmethod
    def _encode(handle: int, proc: str, resp: ClientResponse, rtt: int) -> bytes:
        try:
            return wire.encode_response(handle, resp.status, resp.status_string,
                                        resp.app_status, resp.app_status_string,
                                        resp.tables, rtt)
        except (VoltError, TypeError, ValueError, OverflowError) as exc:
            return wire.encode_response(
                handle, Status.UNEXPECTED_FAILURE,
                f"the result of {proc} cannot be serialized: {type(exc).__name__}: {exc}")

    def refusal(self, conn: Any, proc: str, params: tuple) -> ClientResponse | None:
        """The answer to a call this server takes no more (stopping) or not now (a write
        while paused, except from the admin port); None when it may run."""
        if self.stopping:
            return ClientResponse(Status.SERVER_UNAVAILABLE, "Server is shutting down.")
        if self.paused and not conn.admin and not self._read_only_call(proc, params):
            return ClientResponse(Status.SERVER_UNAVAILABLE, PAUSED_MESSAGE)
        return None

    def dispatch(self, conn: Connection, proc: str, params: tuple,
                 ext: dict[str, Any]) -> ClientResponse:
        """Run one call: partition-directed legs, server sysprocs, else the Database."""
        denied = self.refusal(conn, proc, params)
        if denied is not None:
            return denied
        dest = ext.get("partition_destination")
        if dest is not None:
            if proc.startswith("@"):
                return _graceful("Invalid procedure for all-partition execution. Targeted "
                                 "procedure must be partitioned, must be partitioned on the "
                                 "first parameter, and must not be a system procedure.")
            return self.db.call_partition(dest, proc, *params)
        if proc.startswith("@"):
            handler = self._handlers.get(proc.upper())
            if handler is not None:
                return handler(conn, params)
            resp = self.db.call(proc, *params)
            return resp
        return self.db.call(proc, *params)

    def after_batch(self) -> None:
        """Push topology or catalog changes to subscribers (cheap when nothing changed)."""
        if self._pushed_catalog != self.db.catalog.version:
            self._check_pushes()

    async def _periodic_check(self) -> None:
        while not self.stopping:
            await asyncio.sleep(TOPOLOGY_CHECK_S)
            try:
                self._check_pushes()
            except Exception:  # noqa: BLE001 - keep serving
                log.exception("topology push check failed")

    def _check_pushes(self) -> None:
        if self.db._closed:
            return
        subscribers = [c for c in self.connections if c.subscribed and not c.closed]
        sig = self._topo_signature()
        if sig != self._pushed_topo:
            self._pushed_topo = sig
            frame = wire.encode_response(wire.ASYNC_TOPO_HANDLE, Status.SUCCESS,
                                         tables=self._topo_tables(0))
            for c in subscribers:
                c.send(frame)
        version = self.db.catalog.version
        if version != self._pushed_catalog:
            self._pushed_catalog = version
            resp = self.db.call("@SystemCatalog", "PROCEDURES")
            if resp.status == Status.SUCCESS:
                frame = wire.encode_response(wire.ASYNC_PROC_HANDLE, Status.SUCCESS,
                                             tables=resp.tables)
                for c in subscribers:
                    c.send(frame)

    # ------------------------------------------------------------------ system procedures

    def _ping(self, conn: Connection, params: tuple) -> ClientResponse:
        return ClientResponse(Status.SUCCESS, "SUCCESS", tables=[_table([("STATUS", B)], [(0,)])])

    def _advertised_ip(self, conn: Connection, interface: str) -> str:
        """The address a client should dial: the bound one, else the one it reached us on."""
        if interface and interface not in ("0.0.0.0", "::"):
            return interface
        if conn.local:
            return str(conn.local[0])
        return "127.0.0.1"

    def _system_information(self, conn: Connection, params: tuple) -> ClientResponse:
        if len(params) > 1 or (params and not isinstance(params[0], str)):
            return _graceful("@SystemInformation expects one selector: OVERVIEW or DEPLOYMENT")
        sel = params[0].upper() if params else "OVERVIEW"
        if sel == "OVERVIEW":
            h = self.host_id
            ip = self._advertised_ip(conn, self.client_address[0])
            admin_ip = self._advertised_ip(conn, self.admin_address[0])
            now_ms = int(time.time() * 1000)
            pairs = [
                ("IPADDRESS", ip), ("HOSTNAME", self.hostname),
                ("CLIENTINTERFACE", self.client_address[0]),
                ("CLIENTPORT", str(self.client_address[1])),
                ("ADMININTERFACE", self.admin_address[0] or ""),
                ("ADMINPORT", str(self.admin_address[1])),
                ("HTTPINTERFACE", ""), ("HTTPPORT", "-1"),
                ("INTERNALINTERFACE", ""),
                ("INTERNALPORT", str(self.cluster_host.internal_address[1])
                 if self.cluster_host is not None else "-1"),
                ("PUBLICINTERFACE", ""),
                ("BUILDSTRING", BUILD_STRING), ("VERSION", __version__),
                ("CLUSTERSTATE", "PAUSED" if self.paused else "RUNNING"),
                ("INITIALIZED", "true"), ("CLUSTERID", "0"),
                ("STARTTIME", str(self.start_ms)),
                ("UPTIME", _uptime(now_ms - self.start_ms)),
                ("KFACTOR", str(self.cluster.kfactor)),
                ("PARTITIONGROUP", "0"), ("PLACEMENTGROUP", "0"),
                ("FULLCLUSTERSIZE", str(self.cluster.host_count)),
                ("CATALOG_VERSION", str(self.db.catalog.version)),
                ("HASHINATOR_VERSION", str(self.cluster.hashinator_version)),
                ("TOPOLOGY_VERSION", str(self.cluster.topology.version)),
                ("ADMIN_ADDRESS", admin_ip),
            ]
            rows = [(h, k, v) for k, v in pairs]
            if self.cluster_host is not None:
                for other, facts in self.cluster_host.host_rows():
                    merged = dict(pairs)
                    merged.update(facts)
                    merged["HOSTNAME"] = facts["IPADDRESS"]
                    merged["CLIENTINTERFACE"] = merged["ADMININTERFACE"] = ""
                    merged["ADMIN_ADDRESS"] = facts["IPADDRESS"]
                    rows += [(other, k, v) for k, v in merged.items()]
            return ClientResponse(Status.SUCCESS, tables=[_table(
                [("HOST_ID", I), ("KEY", S), ("VALUE", S)], rows)])
        if sel == "DEPLOYMENT":
            d = self.deployment
            pairs = [
                ("hostcount", str(self.cluster.host_count)),
                ("sitesperhost", str(self.cluster.sites_per_host)),
                ("kfactor", str(self.cluster.kfactor)),
                ("elastic", d.cluster.elastic),
                ("heartbeattimeout", str(d.heartbeat_timeout_s)),
                ("partitiondetection", str(d.partition_detection).lower()),
                ("adminport", str(self.admin_address[1])),
                ("clientport", str(self.client_address[1])),
                ("httpenabled", "false"), ("jsonenabled", "false"),
                ("securityenabled", str(d.security.enabled).lower()),
                ("users", ",".join(u.name for u in d.users)),
                ("snapshotenabled", str(d.snapshot.enabled).lower()),
                ("commandlogenabled", str(d.commandlog.enabled).lower()),
                ("elasticduration", str(d.systemsettings.elastic_duration_ms)),
                ("elasticthroughput", str(d.systemsettings.elastic_throughput_mb_s)),
                ("querytimeout", str(d.systemsettings.query_timeout_ms)),
                ("temptablesmaxsize", str(d.systemsettings.temptables_maxsize_mb)),
            ]
            return ClientResponse(Status.SUCCESS, tables=[
                _table([("PROPERTY", S), ("VALUE", S)], pairs)])
        return _graceful(f"Invalid @SystemInformation selector {params[0]}: "
                         "use OVERVIEW or DEPLOYMENT")

    def _topo_signature(self) -> bytes:
        topo = self.cluster.topology
        leaders = tuple((pid, p.leader, p.replicas) for pid, p in topo.partitions.items())
        return repr((topo.version, self.cluster.hashinator_version, leaders,
                     self.db.hashinator.signature)).encode()

    def _topo_tables(self, fmt: int) -> list[VoltTable]:
        """@Statistics TOPO's two tables (§9.3); fmt 0 = raw hash config, 1 = gzip JSON."""
        key = self._topo_signature()
        hit = self._topo_cache.get(fmt)
        if hit is not None and hit[0] == key:
            return hit[1]
        topo = self.cluster.topology
        rows = []
        site_of: dict[int, int] = {}
        for pid, p in topo.partitions.items():
            sites = []
            # Hosts that failed hold nothing any more (VoltDB lists live sites only).
            for h in [h for h in p.replicas if h not in topo.missing]:
                site = site_of.get(h, 0)
                site_of[h] = site + 1
                sites.append(f"{h}:{site}")
            leader = next(s for s in sites if int(s.split(":")[0]) == p.leader)
            rows.append((pid, ",".join(sites), leader))
        mp_host = min(topo.live_hosts) if topo.live_hosts else self.host_id
        mp_sites = ",".join(f"{h}:{site_of.get(h, 0)}" for h in sorted(topo.live_hosts))
        rows.append((MP_INITIATOR_PID, mp_sites, f"{mp_host}:{site_of.get(mp_host, 0)}"))
        hz = self.db.hashinator
        if fmt == 1:
            config = gzip.compress(_hashinator.config_json(hz.ring()).encode())
        else:
            config = hz.config
        tables = [_table([("Partition", I), ("Sites", S), ("Leader", S)], rows),
                  _table([("HASHTYPE", S), ("HASHCONFIG", VoltType.VARBINARY)],
                         [("ELASTIC", bytes(config))])]
        self._topo_cache[fmt] = (key, tables)
        return tables

    def _statistics(self, conn: Connection, params: tuple) -> ClientResponse:
        if params and isinstance(params[0], str) and params[0].upper() == "TOPO":
            fmt = params[1] if len(params) > 1 else 0
            if fmt not in (0, 1):
                return _graceful(f"Invalid @Statistics TOPO format {fmt!r}: use 0 or 1")
            return ClientResponse(Status.SUCCESS, tables=self._topo_tables(fmt))
        return self.db.call("@Statistics", *params)

    def _subscribe(self, conn: Connection, params: tuple) -> ClientResponse:
        if len(params) != 1 or not isinstance(params[0], str):
            return _graceful("@Subscribe expects one parameter: TOPOLOGY")
        if params[0].upper() != "TOPOLOGY":
            return _graceful(f'Parameter "{params[0]}" is not recognized/supported')
        conn.subscribed = True
        return ClientResponse(Status.SUCCESS)

    def _load_single(self, conn: Connection, params: tuple) -> ClientResponse:
        if len(params) != 4 or not isinstance(params[0], (bytes, str)) \
                or not isinstance(params[1], str) or not isinstance(params[3], VoltTable):
            return _graceful("@LoadSinglepartitionTable expects (VARBINARY partition key, "
                             "STRING table, TINYINT upsert, VOLTTABLE rows)")
        return load_table(self.db, params[1], params[2], params[3], params[0])

    def _load_multi(self, conn: Connection, params: tuple) -> ClientResponse:
        if len(params) != 3 or not isinstance(params[0], str) \
                or not isinstance(params[2], VoltTable):
            return _graceful("@LoadMultipartitionTable expects (STRING table, TINYINT upsert, "
                             "VOLTTABLE rows)")
        return load_table(self.db, params[0], params[1], params[2], None)

    def _shutdown(self, conn: Connection, params: tuple) -> ClientResponse:
        if not conn.admin:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  "@Shutdown is available only on the admin port")
        if not self.users.is_admin(conn.user or ""):
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"User {conn.user} does not have admin permission")
        # Answer first (the response is written with this batch), then stop.
        self.loop.call_soon(self.request_stop)
        return ClientResponse(Status.SUCCESS, "Shutdown requested",
                              tables=[_table([("STATUS", B)], [(0,)])])

    # -- admin mode (@Pause / @Resume) and class loading (@UpdateClasses)

    def _read_only_call(self, proc: str, params: tuple) -> bool:
        """Whether a call only reads (allowed from client connections while paused)."""
        upper = proc.upper()
        if upper == "@ADHOC":
            if not params or not isinstance(params[0], str):
                return True  # let @AdHoc report the bad parameters
            try:
                return bool(self.db._plan(params[0]).read_only)
            except Exception:  # noqa: BLE001 - DDL (or unplannable SQL): treat as a write
                return False
        if proc.startswith("@"):
            if upper == "@UPDATECLASSES":
                return bool(params) and params[0] is None
            return upper not in _WRITE_SYSPROCS
        rt = self.db._procs.get(proc)
        if rt is None:
            real = self.db._procs_ci.get(proc.upper())
            rt = self.db._procs.get(real) if real is not None else None
        return rt is None or bool(rt.read_only)

    def _admin_check(self, conn: Connection, proc: str) -> ClientResponse | None:
        if not self.users.is_admin(conn.user or ""):
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"User {conn.user} does not have admin permission "
                                  f"to run {proc}")
        return None

    def _pause(self, conn: Connection, params: tuple) -> ClientResponse:
        """@Pause: enter admin mode; writes from client-port connections are refused."""
        if not conn.admin:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  "@Pause is available only on the admin port")
        denied = self._admin_check(conn, "@Pause")
        if denied is not None:
            return denied
        if not self.paused:
            self.paused = True
            log.warning("the server is paused (admin mode)")
        return ClientResponse(Status.SUCCESS, tables=[_table([("STATUS", B)], [(0,)])])

    def _resume(self, conn: Connection, params: tuple) -> ClientResponse:
        """@Resume: leave admin mode."""
        if not conn.admin:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  "@Resume is available only on the admin port")
        denied = self._admin_check(conn, "@Resume")
        if denied is not None:
            return denied
        if self.paused:
            self.paused = False
            log.warning("the server resumed normal operation")
        return ClientResponse(Status.SUCCESS, tables=[_table([("STATUS", B)], [(0,)])])

    def _classes_table(self) -> VoltTable:
        """The procedure classes of the loaded modules: CLASS_NAME, VOLT_PROCEDURE, ACTIVE_PROC."""
        from voltdb_py.procedures import VoltProcedure

        active = {p.class_path for p in self.db.catalog.procedures.values() if p.class_path}
        rows = []
        cdir = self.db._classes_dir
        names = sorted(p.name for p in cdir.iterdir()) if cdir.is_dir() else []
        for entry in names:
            if entry.startswith(".") or entry == "__pycache__":
                continue
            module = entry.removesuffix(".py")
            prefix = module + "."
            mods = sorted((n, m) for n, m in list(sys.modules.items())
                          if m is not None and (n == module or n.startswith(prefix)))
            for modname, mod in mods:
                for name in sorted(vars(mod)):
                    obj = getattr(mod, name)
                    if isinstance(obj, type) and issubclass(obj, VoltProcedure) \
                            and obj is not VoltProcedure and obj.__module__ == modname:
                        path = f"{modname}.{name}"
                        rows.append((path, 1, 1 if path in active else 0))
        return _table([("CLASS_NAME", S), ("VOLT_PROCEDURE", I), ("ACTIVE_PROC", I)], rows)

    def _update_classes(self, conn: Connection, params: tuple) -> ClientResponse:
        """@UpdateClasses(VARBINARY payload, STRING file name): load Python procedure code.

        * name ``m.py``: payload is the source of module ``m``.
        * name ``x.zip``: payload is a zip archive whose top level holds modules (``m.py``)
          and/or package directories (``pkg/__init__.py``); each is loaded.
        * payload and name both NULL: nothing changes (lists the classes).

        The files are written under the server root (``uploaded-classes/``) and loaded with
        Database.load_classes (which copies them into the database). Answers one table:
        CLASS_NAME, VOLT_PROCEDURE, ACTIVE_PROC for every procedure class now loaded.
        """
        import io
        import shutil
        import zipfile
        from pathlib import Path, PurePosixPath

        usage = ("@UpdateClasses expects (VARBINARY module source or zip archive, "
                 "STRING file name ending in .py or .zip)")
        if len(params) != 2:
            return _graceful(usage)
        payload, name = params
        if payload is None and name is None:
            return ClientResponse(Status.SUCCESS, tables=[self._classes_table()])
        denied = self._admin_check(conn, "@UpdateClasses")
        if denied is not None:
            return denied
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not isinstance(payload, (bytes, bytearray)) or not isinstance(name, str):
            return _graceful(usage)
        base = PurePosixPath(name.replace("\\", "/")).name
        upload = Path(self.db.path).absolute().parent / "uploaded-classes"
        work = upload / f".{os.getpid()}-{next(self.connection_ids)}"
        try:
            work.mkdir(parents=True)
            targets: list[Path] = []
            if base.endswith(".py"):
                stem = base[:-3]
                if not stem.isidentifier():
                    return _graceful(f"@UpdateClasses: {stem!r} is not a valid module name")
                (work / base).write_bytes(bytes(payload))
                targets.append(work / base)
            elif base.endswith(".zip"):
                try:
                    archive = zipfile.ZipFile(io.BytesIO(bytes(payload)))
                except zipfile.BadZipFile as exc:
                    return _graceful(f"@UpdateClasses: {base} is not a zip archive: {exc}")
                with archive:
                    tops: set[str] = set()
                    for info in archive.infolist():
                        parts = PurePosixPath(info.filename).parts
                        if not parts or info.filename.startswith("/") or ".." in parts:
                            return _graceful(f"@UpdateClasses: unsafe path {info.filename!r} "
                                             f"in {base}")
                        if parts[0] == "__pycache__" or "__pycache__" in parts:
                            continue
                        tops.add(parts[0])
                        archive.extract(info, work)
                for top in sorted(tops):
                    p = work / top
                    if (p.is_file() and top.endswith(".py")) or (p / "__init__.py").is_file():
                        targets.append(p)
                if not targets:
                    return _graceful(f"@UpdateClasses: {base} holds no module (.py) or "
                                     "package (directory with __init__.py) at its top level")
            else:
                return _graceful(f"@UpdateClasses: {base!r}: send a Python module (.py) or "
                                 "a zip archive of modules and packages (.zip)")
            loaded = []
            for t in targets:
                dest = upload / t.name
                if dest.is_dir():
                    shutil.rmtree(dest)
                elif dest.exists():
                    dest.unlink()
                os.replace(t, dest)
                loaded += self.db.load_classes(dest)
        except VoltError as exc:
            return _graceful(f"@UpdateClasses failed: {exc}")
        except (OSError, SyntaxError, ImportError) as exc:
            return _graceful(f"@UpdateClasses failed: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("@UpdateClasses loaded %s", ", ".join(loaded))
        return ClientResponse(Status.SUCCESS, tables=[self._classes_table()])


def _uptime(ms: int) -> str:
    s = ms // 1000
    return f"{s // 86400} days {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{ms % 1000:03d}"


def _partition_key_value(vtype: VoltType, key: bytes | str) -> Any:
    """The partitioning value from @LoadSinglepartitionTable's key bytes (§9.8)."""
    if vtype in _INT_WIDTHS:
        raw = key.encode() if isinstance(key, str) else key
        width = _INT_WIDTHS[vtype]
        if len(raw) < width:
            raise ValueError(f"partition key has {len(raw)} bytes, a {vtype.sql_name} needs "
                             f"{width}")
        return int.from_bytes(raw[:width], "little", signed=True)
    if vtype is VoltType.STRING:
        return key if isinstance(key, str) else bytes(key).decode("utf-8")
    return bytes(key) if not isinstance(key, str) else key.encode()


def load_table(db: Any, table_name: str, upsert: Any, rows: VoltTable,
               partition_key: bytes | str | None) -> ClientResponse:
    """Insert (or upsert) every row of rows into table_name in one transaction.

    With partition_key (``@LoadSinglepartitionTable``) the table must be partitioned and
    every row must belong to the key's partition; without it
    (``@LoadMultipartitionTable``) rows go wherever they belong. Any failing row rolls the
    whole call back (GRACEFUL_FAILURE), as VoltDB does.
    """
    table = db.catalog.tables.get(table_name.upper())
    if table is None or table.is_view:
        return _graceful(f"Table {table_name} does not exist")
    if upsert not in (0, 1, True, False):
        return _graceful(f"upsert flag {upsert!r} must be 0 or 1")
    ncols = len(table.columns)
    if len(rows.columns) != ncols:
        return _graceful(f"table {table.name} has {ncols} columns but the loaded rows have "
                         f"{len(rows.columns)}")
    pid = None
    if partition_key is not None:
        if not table.partitioned or table.partition_column is None:
            return _graceful(f"Table {table.name} is replicated: load it with "
                             "@LoadMultipartitionTable")
        pcol = table.column(table.partition_column)
        try:
            value = _partition_key_value(pcol.vtype, partition_key)
        except (ValueError, UnicodeDecodeError) as exc:
            return _graceful(f"bad partition key for table {table.name}: {exc}")
        pid = db.partition_for(table, value)
        pidx = [c.name for c in table.columns].index(table.partition_column)
        for row in rows.rows:
            try:
                if db.partition_for(table, row[pidx]) != pid:
                    return _graceful(f"Mispartitioned tuple in single-partition insert for "
                                     f"table {table.name}: partition value {row[pidx]!r}")
            except (VoltError, TypeError, ValueError) as exc:
                return _graceful(f"bad partition value {row[pidx]!r} for table "
                                 f"{table.name}: {exc}")
    verb = "UPSERT" if upsert else "INSERT"
    sql = f"{verb} INTO {table.name} VALUES ({', '.join('?' * ncols)})"
    with db._lock:
        if db._closed:
            raise DatabaseClosedError("the database is closed")
        try:
            plan = db._plan(sql)
        except VoltError as exc:
            return _graceful(str(exc))
        data = rows.rows

        def body(t: Any) -> list[VoltTable]:
            for row in data:
                db._run_statement(t, plan, tuple(row))
            return [_table([("modified_tuples", B)], [(len(data),)])]

        return db._execute(None, (), pid, body=body, read_only=False)
