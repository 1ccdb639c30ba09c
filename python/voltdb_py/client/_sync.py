# SPDX-License-Identifier: AGPL-3.0-or-later
"""Client: the blocking face of AsyncClient, for plain scripts and threads.

Each Client owns one event loop running in a daemon background thread; the AsyncClient
lives on that loop and every method hands its coroutine over with
asyncio.run_coroutine_threadsafe. Any number of threads may use one Client at once, and
``call_async`` returns a concurrent.futures.Future so one thread can keep many calls in
flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from voltdb_py.client._async import AsyncClient
from voltdb_py.client.errors import ClientClosedError
from voltdb_py.types import ClientResponse

__all__ = ["Client"]


class Client:
    """A blocking, thread-safe VoltDB client; the same options and behaviour as
    :meth:`AsyncClient.connect` (it connects in the constructor)."""

    def __init__(self, hosts: str | Iterable[str | tuple[str, int]] = "127.0.0.1", *,
                 username: str = "", password: str = "", timeout_s: float = 120.0,
                 connect_timeout_s: float = 10.0, max_in_flight: int = 3000,
                 keepalive_s: float = 10.0, connection_response_timeout_s: float = 30.0,
                 topology_aware: bool = True) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="voltdb-py-client",
                                        daemon=True)
        self._thread.start()
        self._closed = False
        self._lock = threading.Lock()
        try:
            self._client: AsyncClient = self._wait(AsyncClient.connect(
                hosts, username=username, password=password, timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s, max_in_flight=max_in_flight,
                keepalive_s=keepalive_s,
                connection_response_timeout_s=connection_response_timeout_s,
                topology_aware=topology_aware))
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, hosts: str | Iterable[str | tuple[str, int]] = "127.0.0.1",
                **options: Any) -> Client:
        """The same as ``Client(hosts, **options)``."""
        return cls(hosts, **options)

    # -- the loop thread

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        loop = self._loop
        if loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _submit(self, coro: Any) -> concurrent.futures.Future:
        if self._closed:
            coro.close()
            raise ClientClosedError("", 0, "the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _wait(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- calls

    def call(self, procedure: str, *params: Any,
             timeout_s: float | None = None) -> ClientResponse:
        """Call a procedure and wait for its response (see AsyncClient.call)."""
        return self._submit(self._client.call(procedure, *params,
                                              timeout_s=timeout_s)).result()

    def call_typed(self, procedure: str, types: Sequence[int], *params: Any,
                   timeout_s: float | None = None) -> ClientResponse:
        """Call with explicit wire types (see AsyncClient.call_typed)."""
        return self._submit(self._client.call_typed(procedure, types, *params,
                                                    timeout_s=timeout_s)).result()

    def call_async(self, procedure: str, *params: Any, timeout_s: float | None = None,
                   types: Sequence[int] | None = None) -> concurrent.futures.Future:
        """Start a call; return a concurrent.futures.Future of its ClientResponse."""
        if types is None:
            return self._submit(self._client.call(procedure, *params, timeout_s=timeout_s))
        return self._submit(self._client.call_typed(procedure, types, *params,
                                                    timeout_s=timeout_s))

    def call_all_partitions(self, procedure: str, *params: Any,
                            timeout_s: float | None = None) -> dict[int, ClientResponse]:
        """Run procedure on every partition (see AsyncClient.call_all_partitions)."""
        return self._submit(self._client.call_all_partitions(
            procedure, *params, timeout_s=timeout_s)).result()

    def refresh_topology(self) -> None:
        """Run discovery again (see AsyncClient.refresh_topology)."""
        self._submit(self._client.refresh_topology()).result()

    # -- routing and state (read on the caller's thread; snapshots)

    def partition_for_call(self, procedure: str, *params: Any) -> int | None:
        return self._client.partition_for_call(procedure, *params)

    def host_for_call(self, procedure: str, *params: Any) -> int | None:
        return self._client.host_for_call(procedure, *params)

    def affinity_stats(self) -> dict[int, tuple[int, int]]:
        return self._client.affinity_stats()

    @property
    def hosts(self) -> dict[int, tuple[str, int]]:
        return self._client.hosts

    @property
    def partition_leaders(self) -> dict[int, int]:
        return self._client.partition_leaders

    @property
    def procedures(self) -> dict[str, tuple[bool, int, int]]:
        return self._client.procedures

    @property
    def in_flight(self) -> int:
        return self._client.in_flight

    @property
    def async_client(self) -> AsyncClient:
        """The AsyncClient underneath (it lives on this Client's loop thread)."""
        return self._client

    # -- closing

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the connections, stop the loop thread and close the loop (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if not self._loop.is_closed():
                self._wait(self._client.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self._client!r}>"
