# SPDX-License-Identifier: AGPL-3.0-or-later
"""AsyncClient: VoltDB's client protocol over asyncio, pipelined and topology-aware.

One asyncio.Protocol per server connection. A call is encoded by the compiled codec,
appended to its connection's output list and written with the other calls queued in the
same event-loop iteration (one transport write per batch). Responses are matched to calls
by client handle, so any number of calls are in flight on a connection and may complete in
any order. A sweeper task (every SWEEP_INTERVAL_S) completes overdue calls with
CONNECTION_TIMEOUT and sends @Ping on idle connections.

Topology (voltdb-wire-protocol.md §9-§11): after login the client runs @SystemInformation
OVERVIEW, @Statistics TOPO 0 and @SystemCatalog PROCEDURES, dials every advertised host,
subscribes to topology pushes on one connection and routes each single-partition call to
the connection of its partition's leader (hashing the partitioning parameter with the
compiled hashinator); multi-partition calls go to the leader of partition 16383, the rest
round-robin.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from voltdb_py import hashinator as _hashinator
from voltdb_py import wire
from voltdb_py.client.errors import (
    AuthenticationError,
    ClientClosedError,
    ClientConnectionError,
    HostUnreachableError,
    NoConnectionsError,
    ProtocolError,
)
from voltdb_py.engine import _engine
from voltdb_py.errors import CodecError, VoltError
from voltdb_py.types import ClientResponse, Status

log = logging.getLogger("voltdb_py.client")

__all__ = ["DEFAULT_PORT", "MP_PARTITION", "AsyncClient", "CallFailedError", "parse_hosts"]

DEFAULT_PORT = 21212
#: The multi-partition initiator's partition id: multi-partition calls go to its leader.
MP_PARTITION = 16383
#: How often overdue calls are failed and idle connections pinged (timeout precision).
SWEEP_INTERVAL_S = 0.05

_LOGIN_MESSAGES = {
    -1: "authentication failed (bad user name or password)",
    1: "the server has too many connections",
    2: "connection timed out during authentication",
    3: "wire protocol format violation",
    4: "failed to authenticate to a rejoining node",
    5: "unknown service",
    6: "the server requires TLS/SSL",
    7: "a client certificate is required",
    8: "the client certificate was revoked",
}
_MAX_CALL_HANDLE = wire.MAX_CALL_HANDLE
_decode_response = wire.decode_response
_encode_invocation = wire.encode_invocation
_PING_FRAME = wire.encode_invocation("@Ping", wire.PING_HANDLE)


class CallFailedError(VoltError):
    """A helper call (e.g. @GetPartitionKeys for call_all_partitions) did not succeed.

    :ivar response: the failed ClientResponse.
    """

    def __init__(self, message: str, response: ClientResponse) -> None:
        self.response = response
        super().__init__(message)


def parse_hosts(hosts: str | Iterable[str | tuple[str, int]],
                default_port: int = DEFAULT_PORT) -> list[tuple[str, int]]:
    """Parse ``"h:port,h2:port"`` (or a list of such strings or (host, port) pairs).

    A host without a port gets default_port; IPv6 literals are written ``[::1]:21212``.

    :raises ValueError: an empty list or a bad port.
    """
    items: list[Any] = hosts.split(",") if isinstance(hosts, str) else list(hosts)
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, tuple):
            out.append((str(item[0]), int(item[1])))
            continue
        text = str(item).strip()
        if not text:
            continue
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif text.count(":") == 1:
            host, _, port = text.partition(":")
        else:
            host, port = text, ""
        if port and (not port.isdigit() or not 0 < int(port) < 65536):
            raise ValueError(f"bad port in host {text!r}")
        out.append((host or "127.0.0.1", int(port) if port else default_port))
    if not out:
        raise ValueError("no hosts given")
    return out


class _Conn(asyncio.Protocol):
    """One logged-in connection to one server host."""

    def __init__(self, client: AsyncClient, host: str, port: int) -> None:
        self.client = client
        self.loop = client._loop
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.frames = wire.FrameBuffer()
        # handle -> (future, deadline)
        self.pending: dict[int, list] = {}
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.login_fut: asyncio.Future = self.loop.create_future()
        self.closed_fut: asyncio.Future = self.loop.create_future()
        self.logged_in = False
        self.alive = False
        self.host_id: int | None = None
        self.connection_id: int | None = None
        self.cluster_start_ms: int | None = None
        self.leader_ipv4: int | None = None
        self.build: str | None = None
        self.last_recv = self.loop.time()
        self.ping_at: float | None = None
        self.subscribed = False
        self.lost_reason: str | None = None
        self.affinity_calls = 0
        self.round_robin_calls = 0

    # -- asyncio callbacks

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:  # pragma: no cover - not TCP
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        was_alive = self.alive
        self.alive = False
        reason = self.lost_reason or (f"connection lost: {exc}" if exc else
                                      "connection closed by the server")
        self.lost_reason = reason
        if not self.login_fut.done():
            self.login_fut.set_exception(ProtocolError(
                self.host, self.port, f"the connection closed during login ({reason})"))
        self._fail_pending(reason)
        if not self.closed_fut.done():
            self.closed_fut.set_result(None)
        if was_alive:
            self.client._connection_lost(self)

    def data_received(self, data: bytes) -> None:
        self.last_recv = self.loop.time()
        self.ping_at = None
        if not self.logged_in:
            self._data_before_login(data)
            return
        done: list = []
        try:
            # One compiled call decodes the answers and pops their calls from pending.
            others, err = self.frames.feed_answers(data, self.pending, done)
        except CodecError as exc:
            self._complete(done, ())
            self.abort(f"bad frame from the server: {exc}")
            return
        self._complete(done, others)
        if err is not None:
            self.abort(f"undecodable response from the server: {err}")

    def _complete(self, done: list, others: Iterable[tuple[int, ClientResponse]]) -> None:
        """Complete the answered calls ((pending entry, response) pairs in done) and route
        the server's pushes among others ((handle, response) pairs that answer no pending
        call; the rest answer calls that timed out and are dropped)."""
        client = self.client
        if done:
            # Slots first: callers waiting for one resume before the answered callers,
            # so the pipeline refills while the answers are consumed.
            client._release(len(done))
            for entry, resp in done:
                fut = entry[0]
                if not fut.done():
                    fut.set_result(resp)
        for handle, resp in others:
            if handle > _MAX_CALL_HANDLE:
                client._push(self, handle, resp)

    def _complete_pairs(self, pairs: list[tuple[int, ClientResponse]]) -> None:
        """_complete for (handle, response) pairs decoded one by one."""
        pending = self.pending
        done, others = [], []
        for handle, resp in pairs:
            entry = pending.pop(handle, None)
            if entry is None:
                others.append((handle, resp))
            else:
                done.append((entry, resp))
        self._complete(done, others)

    def _data_before_login(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except CodecError as exc:
            self.abort(f"bad frame from the server: {exc}")
            return
        if not frames:
            return
        self._login_reply(frames[0])
        if not self.logged_in:
            return
        pairs = []
        for body in frames[1:]:
            try:
                pairs.append(_decode_response(body, True))
            except CodecError as exc:
                self._complete_pairs(pairs)
                self.abort(f"undecodable response from the server: {exc}")
                return
        self._complete_pairs(pairs)

    # -- login

    def _login_reply(self, body: bytes) -> None:
        try:
            code, host_id, conn_id, start_ms, leader, build = wire.decode_login_response(body)
        except CodecError as exc:
            self.login_fut.set_exception(ProtocolError(
                self.host, self.port, f"bad login response: {exc}"))
            self.abort("bad login response")
            return
        if code != 0:
            msg = _LOGIN_MESSAGES.get(code, "login refused")
            self.login_fut.set_exception(AuthenticationError(
                self.host, self.port, f"{msg} (login code {code})", code))
            self.lost_reason = msg
            if self.transport is not None:
                self.transport.close()
            return
        self.host_id = host_id
        self.connection_id = conn_id
        self.cluster_start_ms = start_ms
        self.leader_ipv4 = leader
        self.build = build
        self.logged_in = True
        self.alive = True
        self.login_fut.set_result(None)

    # -- sending

    def send(self, frame: bytes) -> None:
        self.out.append(frame)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        t = self.transport
        if t is not None and self.alive and not t.is_closing():
            t.write(data)

    # -- failure

    def _fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        self.out.clear()
        client = self.client
        for fut, _deadline in pending.values():
            client._release()
            if not fut.done():
                fut.set_result(ClientResponse(
                    Status.CONNECTION_LOST,
                    f"Connection to {self.host}:{self.port} lost: {reason}"))

    def abort(self, reason: str) -> None:
        """Drop the connection at once; its pending calls complete with CONNECTION_LOST."""
        if self.lost_reason is None:
            self.lost_reason = reason
        if self.transport is not None:
            self.transport.abort()

    def __repr__(self) -> str:
        return f"<connection {self.host}:{self.port} host_id={self.host_id} alive={self.alive}>"


class _Topology:
    """What discovery learned: hosts, partition leaders, the hash ring and the procedures."""

    def __init__(self) -> None:
        self.hosts: dict[int, tuple[str, int]] = {}
        self.leaders: dict[int, int] = {}
        self.hashinator: Any = None
        # name -> (single_partition, partition_parameter, partition_parameter_type)
        self.procedures: dict[str, tuple[bool, int, int]] = {}


class AsyncClient:
    """A pipelined, topology-aware VoltDB client for asyncio. Create it with :meth:`connect`.

    Every call returns a :class:`~voltdb_py.types.ClientResponse` (the embedded API's type).
    Failures of the call itself are statuses, not exceptions: a call with no answer within
    its timeout completes with ``Status.CONNECTION_TIMEOUT`` (-6) and the late answer is
    dropped; calls pending on a connection that breaks complete with
    ``Status.CONNECTION_LOST`` (-4). Exceptions are raised for parameters the codec cannot
    encode (``TypeMismatchError``/``ValueOutOfRangeError``), a client with no live
    connection (:class:`NoConnectionsError`) and a closed client (:class:`ClientClosedError`).
    """

    def __init__(self, *, username: str = "", password: str = "", timeout_s: float = 120.0,
                 connect_timeout_s: float = 10.0, max_in_flight: int = 3000,
                 keepalive_s: float = 10.0, connection_response_timeout_s: float = 30.0,
                 topology_aware: bool = True) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._loop = loop = asyncio.get_running_loop()
        # The stock loop's time() is a Python-level wrapper of time.monotonic: call that
        # directly on the per-call path.
        self._clock: Any = (time.monotonic if type(loop).time is asyncio.BaseEventLoop.time
                            else loop.time)
        self.username = username
        self._password = password
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.max_in_flight = int(max_in_flight)
        self.keepalive_s = float(keepalive_s)
        self.connection_response_timeout_s = float(connection_response_timeout_s)
        self.topology_aware = topology_aware
        self._handles = itertools.count(1)
        self._conns: list[_Conn] = []
        self._by_host: dict[int, _Conn] = {}
        self._rr = 0
        self._in_flight = 0
        self._slot_waiters: deque[asyncio.Future] = deque()
        self._topo = _Topology()
        # The compiled per-call router: the topology's procedures and ring, and each
        # partition's leader connection (kept current by _retarget).
        self._router = _engine.CallRouter(_hashinator.partition_for_parameter, MP_PARTITION)
        self._seed_port = DEFAULT_PORT
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._refreshing: asyncio.Task | None = None
        self._subscribing = False

    # ------------------------------------------------------------------ connecting

    @classmethod
    async def connect(cls, hosts: str | Iterable[str | tuple[str, int]] = "127.0.0.1", *,
                      username: str = "", password: str = "", timeout_s: float = 120.0,
                      connect_timeout_s: float = 10.0, max_in_flight: int = 3000,
                      keepalive_s: float = 10.0, connection_response_timeout_s: float = 30.0,
                      topology_aware: bool = True) -> AsyncClient:
        """Log in to every seed host, discover the cluster and connect to all its hosts.

        :param hosts: ``"h:port,h2:port"`` or a list (port 21212 when omitted).
        :param timeout_s: the default per-call timeout.
        :param connect_timeout_s: the limit for each TCP connect plus login.
        :param max_in_flight: the most calls outstanding at once; further callers wait.
        :param keepalive_s: send @Ping on a connection that received nothing for this long.
        :param connection_response_timeout_s: declare a connection dead (its calls then
            complete with CONNECTION_LOST) when a ping gets no answer for this long.
        :param topology_aware: discover the topology and route calls to partition leaders
            (otherwise every call goes round-robin over the seed connections).
        :raises HostUnreachableError: no seed could be reached (the first seed's reason).
        :raises AuthenticationError: a seed refused the login.
        """
        self = cls(username=username, password=password, timeout_s=timeout_s,
                   connect_timeout_s=connect_timeout_s, max_in_flight=max_in_flight,
                   keepalive_s=keepalive_s,
                   connection_response_timeout_s=connection_response_timeout_s,
                   topology_aware=topology_aware)
        seeds = parse_hosts(hosts)
        self._seed_port = seeds[0][1]
        results = await asyncio.gather(*(self._dial(h, p) for h, p in seeds),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if not isinstance(r, ClientConnectionError):
                await self.close()
                raise r
        auth = [e for e in errors if isinstance(e, AuthenticationError)]
        if auth or not self._conns:
            await self.close()
            raise (auth or errors)[0]
        for e in errors:
            log.warning("seed not reachable: %s", e)
        self._sweeper = self._loop.create_task(self._sweep())
        if topology_aware:
            try:
                await self.refresh_topology()
                await self._subscribe()
            except BaseException:
                await self.close()
                raise
        return self

    async def _dial(self, host: str, port: int) -> _Conn:
        """Connect and log in to one host; return the live connection (registered)."""
        loop = self._loop
        deadline = loop.time() + self.connect_timeout_s
        try:
            _t, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(self, host, port), host, port),
                self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise HostUnreachableError(
                host, port, f"no TCP connection within {self.connect_timeout_s} s") from None
        except OSError as exc:
            if exc.errno:
                reason = f"{os.strerror(exc.errno)} (errno {exc.errno})"
            else:
                reason = str(exc) or type(exc).__name__
            raise HostUnreachableError(host, port, reason) from None
        assert conn.transport is not None
        conn.transport.write(wire.encode_login(self.username, self._password))
        try:
            await asyncio.wait_for(asyncio.shield(conn.login_fut),
                                   max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            conn.login_fut.cancel()
            conn.abort("login timed out")
            await conn.closed_fut
            raise HostUnreachableError(
                host, port, f"no login response within {self.connect_timeout_s} s") from None
        except ClientConnectionError:
            await conn.closed_fut
            raise
        if self._closed:
            conn.abort("client closed")
            await conn.closed_fut
            raise ClientClosedError(host, port, "the client was closed while connecting")
        if conn.host_id in self._by_host and self._by_host[conn.host_id].alive:
            # A second route to a host we already reach (e.g. localhost and 127.0.0.1).
            conn.transport.close()
            await conn.closed_fut
            return self._by_host[conn.host_id]
        self._conns.append(conn)
        self._by_host[conn.host_id] = conn
        self._retarget()
        return conn

    def _connection_lost(self, conn: _Conn) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        if self._by_host.get(conn.host_id) is conn:
            del self._by_host[conn.host_id]
            self._retarget()
        if self._closed:
            return
        log.warning("lost the connection to %s:%s (host %s): %s", conn.host, conn.port,
                    conn.host_id, conn.lost_reason)
        if conn.subscribed and self._conns and self.topology_aware:
            self._spawn(self._subscribe())

    # ------------------------------------------------------------------ topology

    async def refresh_topology(self) -> None:
        """Run discovery (OVERVIEW, TOPO 0, PROCEDURES) and dial hosts not yet connected.

        A failing discovery call leaves the previous snapshot (routing stays round-robin
        until one succeeds); it never raises for that.
        """
        overview, topo, procs = await asyncio.gather(
            self.call("@SystemInformation", "OVERVIEW"),
            self.call("@Statistics", "TOPO", 0),
            self.call("@SystemCatalog", "PROCEDURES"))
        if overview.ok and overview.tables:
            hosts: dict[int, dict[str, str]] = {}
            for hid, key, value in overview.tables[0].rows:
                hosts.setdefault(int(hid), {})[str(key).upper()] = value
            addr = {}
            for hid, kv in hosts.items():
                ip = kv.get("IPADDRESS") or ""
                port = kv.get("CLIENTPORT") or ""
                if ip:
                    addr[hid] = (ip, int(port) if port.isdigit() else self._seed_port)
            self._topo.hosts = addr
        else:
            log.warning("topology discovery: @SystemInformation failed: %s", overview)
        if topo.ok:
            self._apply_topo(topo)
        else:
            log.warning("topology discovery: @Statistics TOPO failed: %s", topo)
        if procs.ok:
            self._apply_procedures(procs)
        else:
            log.warning("topology discovery: @SystemCatalog failed: %s", procs)
        missing = [(hid, a) for hid, a in self._topo.hosts.items() if hid not in self._by_host]
        if missing:
            results = await asyncio.gather(*(self._dial(*a) for _h, a in missing),
                                           return_exceptions=True)
            for (hid, a), r in zip(missing, results):
                if isinstance(r, BaseException):
                    log.warning("cannot connect to host %s at %s:%s: %s", hid, a[0], a[1], r)

    def _apply_topo(self, resp: ClientResponse) -> None:
        if len(resp.tables) < 2:
            return
        leaders = {}
        for row in resp.tables[0].rows:
            pid, _sites, leader = row[0], row[1], row[2]
            if leader:
                try:
                    leaders[int(pid)] = int(str(leader).split(":", 1)[0])
                except ValueError:
                    continue
        hz = None
        hash_rows = resp.tables[1].rows
        if hash_rows and str(hash_rows[0][0]).upper() == "ELASTIC" and hash_rows[0][1]:
            try:
                hz = _engine.Hashinator(bytes(hash_rows[0][1]))
            except (VoltError, ValueError, TypeError) as exc:
                log.warning("undecodable hash ring (routing round-robin): %s", exc)
        self._topo.leaders = leaders
        self._topo.hashinator = hz
        self._retarget()

    def _apply_procedures(self, resp: ClientResponse) -> None:
        if not resp.tables:
            return
        t = resp.tables[0]
        try:
            ni, ri = t.column_index("PROCEDURE_NAME"), t.column_index("REMARKS")
        except KeyError:
            return
        procs = {}
        for row in t.rows:
            try:
                r = json.loads(row[ri])
            except (TypeError, ValueError):
                continue
            if not isinstance(r, dict) or r.get("compound"):
                continue
            single = bool(r.get("singlePartition"))
            pidx = int(r.get("partitionParameter", -1) if single else -1)
            ptype = int(r.get("partitionParameterType", -1) if single else -1)
            if single and pidx < 0:
                continue  # directed: no partitioning parameter, round-robin
            procs[row[ni]] = (single, pidx, ptype)
        self._topo.procedures = procs
        self._retarget()

    def _retarget(self) -> None:
        """Give the router the current procedures, ring and leader connections."""
        topo, by_host, router = self._topo, self._by_host, self._router
        router.procedures = topo.procedures
        router.hashinator = topo.hashinator
        router.set_targets({pid: by_host[h] for pid, h in topo.leaders.items()
                            if h in by_host})

    async def _subscribe(self) -> None:
        """Ask one live connection for topology pushes (@Subscribe TOPOLOGY)."""
        if self._subscribing or self._closed:
            return
        self._subscribing = True
        try:
            for conn in list(self._conns):
                if not conn.alive:
                    continue
                resp = await self._call_on(conn, "@Subscribe", ("TOPOLOGY",))
                if resp.ok:
                    conn.subscribed = True
                    return
                if resp.status != Status.CONNECTION_LOST:
                    log.warning("@Subscribe TOPOLOGY refused: %s", resp.status_string)
                    return
        finally:
            self._subscribing = False

    def _push(self, conn: _Conn, handle: int, resp: ClientResponse) -> None:
        if handle == wire.ASYNC_TOPO_HANDLE:
            self._apply_topo(resp)
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = self._spawn(self.refresh_topology())
        elif handle == wire.ASYNC_PROC_HANDLE:
            self._apply_procedures(resp)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = self._loop.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Any) -> None:
        try:
            await coro
        except (ClientConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("background topology work failed")

    # ------------------------------------------------------------------ routing

    def partition_for_call(self, procedure: str, *params: Any) -> int | None:
        """The partition a call routes to: its partition id, 16383 for a multi-partition
        procedure, or None when it goes round-robin (unknown/system procedure, no ring,
        or a value that does not hash)."""
        return self._router.partition(procedure, params)

    def host_for_call(self, procedure: str, *params: Any) -> int | None:
        """The host id whose connection a call would use by affinity, or None (round-robin)."""
        conn = self._router.route(procedure, params)
        return conn.host_id if conn is not None and conn.alive else None

    def _route(self, procedure: str, params: Sequence[Any]) -> _Conn:
        conn = self._router.route(procedure, params)
        if conn is not None and conn.alive:
            conn.affinity_calls += 1
            return conn
        return self._round_robin()

    def _round_robin(self) -> _Conn:
        conns = self._conns
        if not conns:
            if self._closed:
                raise ClientClosedError("", 0, "the client is closed")
            raise NoConnectionsError("", 0, "no live connection to any host")
        self._rr += 1
        conn = conns[self._rr % len(conns)]
        conn.round_robin_calls += 1
        return conn

    def affinity_stats(self) -> dict[int, tuple[int, int]]:
        """Per connected host id: (calls routed by affinity, calls routed round-robin)."""
        return {c.host_id: (c.affinity_calls, c.round_robin_calls)
                for c in self._conns if c.host_id is not None}

    @property
    def hosts(self) -> dict[int, tuple[str, int]]:
        """Connected host ids and their (host, port)."""
        return {c.host_id: (c.host, c.port) for c in self._conns if c.host_id is not None}

    @property
    def partition_leaders(self) -> dict[int, int]:
        """Partition id -> leader host id, as last discovered or pushed."""
        return dict(self._topo.leaders)

    @property
    def procedures(self) -> dict[str, tuple[bool, int, int]]:
        """Procedure name -> (single_partition, partition_parameter, partition_type code)."""
        return dict(self._topo.procedures)

    @property
    def in_flight(self) -> int:
        """Calls sent and not yet answered, timed out or failed."""
        return self._in_flight

    # ------------------------------------------------------------------ calls

    async def call(self, procedure: str, *params: Any,
                   timeout_s: float | None = None) -> ClientResponse:
        """Call a procedure; parameter types are inferred from the Python values."""
        if self._in_flight >= self.max_in_flight or self._slot_waiters:
            await self._wait_slot()
        return await self._submit(procedure, params, None, timeout_s, None, None)

    async def call_typed(self, procedure: str, types: Sequence[int], *params: Any,
                         timeout_s: float | None = None) -> ClientResponse:
        """Call with explicit wire types (VoltType or codes; a list value is an ARRAY of that
        type; None is encoded as the type's NULL)."""
        if self._in_flight >= self.max_in_flight or self._slot_waiters:
            await self._wait_slot()
        return await self._submit(procedure, params, types, timeout_s, None, None)

    async def call_all_partitions(self, procedure: str, *params: Any,
                                  timeout_s: float | None = None) -> dict[int, ClientResponse]:
        """Run a single-partition procedure once on every partition (VoltDB's
        callAllPartitionProcedure): ``@GetPartitionKeys INTEGER``, then one version-2
        invocation per partition with ALL_PARTITION and PARTITION_DESTINATION, the
        partition's key prepended to params, each sent to that partition's leader.

        :returns: partition id -> that leg's response, in partition order.
        :raises CallFailedError: @GetPartitionKeys failed.
        """
        keys = await self.call("@GetPartitionKeys", "INTEGER", timeout_s=timeout_s)
        if not keys.ok or not keys.tables:
            raise CallFailedError(f"@GetPartitionKeys failed: {keys.status_string}", keys)
        rows = sorted((int(r[0]), r[1]) for r in keys.tables[0].rows)

        async def leg(pid: int, key: Any) -> ClientResponse:
            if self._in_flight >= self.max_in_flight or self._slot_waiters:
                await self._wait_slot()
            host = self._topo.leaders.get(pid)
            conn = self._by_host.get(host)  # type: ignore[arg-type]
            if conn is None or not conn.alive:
                conn = self._round_robin()
            return await self._submit(procedure, (key, *params), None, timeout_s, conn,
                                      {"all_partition": True, "partition_destination": pid})

        results = await asyncio.gather(*(leg(pid, key) for pid, key in rows))
        return dict(zip((pid for pid, _k in rows), results))

    async def _call_on(self, conn: _Conn, procedure: str, params: tuple) -> ClientResponse:
        if self._in_flight >= self.max_in_flight or self._slot_waiters:
            await self._wait_slot()
        return await self._submit(procedure, params, None, None, conn, None)

    def _submit(self, procedure: str, params: Sequence[Any], types: Any,
                timeout_s: float | None, conn: _Conn | None,
                extensions: dict | None) -> asyncio.Future:
        """Encode and queue one call (a slot is free); return the future of its response."""
        if self._closed:
            raise ClientClosedError("", 0, "the client is closed")
        handle = next(self._handles)
        deadline = self._clock() + (self.timeout_s if timeout_s is None else timeout_s)
        if conn is None and types is None and extensions is None:
            # The common call: routed, encoded and queued in one compiled call.
            return self._router.submit(self, procedure, params, handle, deadline)
        if conn is None:
            conn = self._route(procedure, params)
        frame = _encode_invocation(procedure, handle, params, types, extensions)
        fut = self._loop.create_future()
        conn.pending[handle] = (fut, deadline)
        self._in_flight += 1
        conn.send(frame)
        return fut

    async def _wait_slot(self) -> None:
        if self._closed:
            raise ClientClosedError("", 0, "the client is closed")
        while self._in_flight >= self.max_in_flight:
            fut = self._loop.create_future()
            self._slot_waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._slot_waiters:
                    self._slot_waiters.remove(fut)
                elif fut.done() and not fut.cancelled() and fut.exception() is None:
                    self._wake_one()  # pass the wake-up on
                raise
        if self._slot_waiters and self._in_flight < self.max_in_flight - 1:
            self._wake_one()

    def _wake_one(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            w = waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _release(self, n: int = 1) -> None:
        """Give back n in-flight slots, waking one waiting caller per slot."""
        self._in_flight -= n
        waiters = self._slot_waiters
        while waiters and n > 0:
            self._wake_one()
            n -= 1

    # ------------------------------------------------------------------ sweeper

    async def _sweep(self) -> None:
        """Fail overdue calls with CONNECTION_TIMEOUT; ping idle connections; drop dead ones."""
        loop = self._loop
        while not self._closed:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = loop.time()
            for conn in list(self._conns):
                pending = conn.pending
                if pending:
                    expired = [h for h, c in pending.items() if c[1] <= now]
                    for h in expired:
                        fut = pending.pop(h)[0]
                        self._release()
                        if not fut.done():
                            fut.set_result(ClientResponse(
                                Status.CONNECTION_TIMEOUT,
                                f"No response received in the allotted time from "
                                f"{conn.host}:{conn.port} (call timeout)"))
                if conn.ping_at is not None:
                    if now - conn.ping_at >= self.connection_response_timeout_s:
                        conn.abort(f"no response to @Ping for "
                                   f"{self.connection_response_timeout_s} s")
                elif now - conn.last_recv >= self.keepalive_s:
                    conn.ping_at = now
                    conn.send(_PING_FRAME)

    # ------------------------------------------------------------------ closing

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close every connection. Calls still pending complete with CONNECTION_LOST;
        later calls raise ClientClosedError."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        conns = list(self._conns)
        for c in conns:
            c.lost_reason = "the client was closed"
            c._flush()
            if c.transport is not None:
                c.transport.close()
        for c in conns:
            try:
                await asyncio.wait_for(asyncio.shield(c.closed_fut), 5.0)
            except asyncio.TimeoutError:
                if c.transport is not None:
                    c.transport.abort()
        self._conns.clear()
        self._by_host.clear()
        while self._slot_waiters:
            w = self._slot_waiters.popleft()
            if not w.done():
                w.set_exception(ClientClosedError("", 0, "the client was closed"))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (f"<AsyncClient hosts={sorted(self.hosts)} in_flight={self._in_flight} "
                f"closed={self._closed}>")
