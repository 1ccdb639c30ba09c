# SPDX-License-Identifier: AGPL-3.0-or-later
"""Host-to-host links of a cluster: length-prefixed msgpack messages over TCP.

Every host listens on its internal port (VoltDB's ``--internal``, default 3021) and keeps
one outgoing link to every other host. A host sends only on its outgoing links and reads
only from incoming ones, so the messages from one host to another arrive in the order
they were sent (replication relies on it). An outgoing link starts with
``["hello", host_id]`` and reconnects after a loss; messages written while it is down wait
in a bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from voltdb_py.errors import CodecError
from voltdb_py.node import codec

log = logging.getLogger("voltdb_py.node.mesh")

#: Messages kept for a link that is down before the oldest are dropped (the peer is then
#: treated as failed by the heartbeat rule long before this matters).
MAX_QUEUED = 100_000
RECONNECT_S = 0.05


def set_nodelay(transport: Any) -> None:
    """Turn Nagle's algorithm off on a TCP transport (answers must not wait)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not TCP
            pass


class Inbound(asyncio.Protocol):
    """An incoming link (or a joining host's connection): hands messages to on_message."""

    def __init__(self, on_message: Callable[[Inbound, Any], None]) -> None:
        self.on_message = on_message
        self.reader = codec.FrameReader()
        self.transport: asyncio.Transport | None = None
        self.peer_host: int | None = None
        self.peername: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.reader.feed(data)
        except CodecError as exc:
            log.warning("dropping internal connection from %s: %s", self.peername, exc)
            if self.transport is not None:
                self.transport.abort()
            return
        for m in msgs:
            if not isinstance(m, list) or not m or not isinstance(m[0], str):
                log.warning("dropping internal connection from %s: message %r",
                            self.peername, type(m).__name__)
                if self.transport is not None:
                    self.transport.abort()
                return
            self.on_message(self, m)

    def reply(self, msg: Any) -> None:
        """Answer on this connection (used only before the cluster is formed)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(codec.frame(msg))


class _OutProtocol(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:  # peers never answer on this link
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._lost(self)


class Link:
    """The outgoing link to one peer host."""

    def __init__(self, loop: asyncio.AbstractEventLoop, my_id: int, peer_id: int,
                 address: tuple[str, int], on_down: Callable[[int, bool], None],
                 on_up: Callable[[int], None]) -> None:
        self.loop = loop
        self.my_id = my_id
        self.peer_id = peer_id
        self.address = address
        self.on_down = on_down
        self.on_up = on_up
        self.transport: asyncio.Transport | None = None
        self.queue: list[bytes] = []
        self.closed = False
        self.connected_once = False
        self.last_sent = 0.0
        self._flush_scheduled = False
        self._task = loop.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        while not self.closed and self.transport is None:
            try:
                transport, proto = await self.loop.create_connection(
                    lambda: _OutProtocol(self), *self.address)
            except OSError as exc:
                refused = isinstance(exc, ConnectionRefusedError)
                if self.connected_once:
                    self.on_down(self.peer_id, refused)
                await asyncio.sleep(RECONNECT_S)
                continue
            if self.closed:
                transport.close()
                return
            set_nodelay(transport)
            transport.write(codec.frame(["hello", self.my_id]))
            queued, self.queue = self.queue, []
            if queued:
                transport.write(b"".join(queued))
            self.transport = transport  # type: ignore[assignment]
            self.connected_once = True
            self.last_sent = time.monotonic()
            self.on_up(self.peer_id)

    def _lost(self, proto: _OutProtocol) -> None:
        self.transport = None
        if self.closed:
            return
        self.on_down(self.peer_id, False)
        self._task = self.loop.create_task(self._connect_loop())

    def send(self, msg: Any) -> None:
        """Queue one message; the messages of one event-loop turn go out in one write."""
        if self.closed:
            return
        queue = self.queue
        if len(queue) >= MAX_QUEUED:
            del queue[: MAX_QUEUED // 10]
        queue.append(codec.frame(msg))
        if not self._flush_scheduled and self.transport is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def flush(self) -> None:
        """Write what is queued now (instead of at the end of this event-loop turn)."""
        if self.queue:
            self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        t = self.transport
        if t is None or t.is_closing() or not self.queue:
            return
        queued, self.queue = self.queue, []
        t.write(b"".join(queued) if len(queued) > 1 else queued[0])
        self.last_sent = time.monotonic()

    def close(self) -> None:
        self.closed = True
        self._task.cancel()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
