# SPDX-License-Identifier: AGPL-3.0-or-later
"""Errors of voltdb_py.client: every one is a ConnectionError naming the host and the reason."""

from __future__ import annotations


class ClientConnectionError(ConnectionError):
    """Base class: a connection to a server could not be made, was refused or is gone.

    :ivar host: the host the error is about ("" when it concerns no single host).
    :ivar port: its port (0 when unknown).
    :ivar reason: why, in words.
    """

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        where = f"{host}:{port}" if host else "the cluster"
        super().__init__(f"{where}: {reason}")


class HostUnreachableError(ClientConnectionError):
    """No TCP connection could be made (refused, timed out, unknown name, no route)."""


class AuthenticationError(ClientConnectionError):
    """The server refused the login (bad user or password, or another login failure code).

    :ivar code: the login result code (voltdb-wire-protocol.md §3.2; -1 = bad credentials).
    """

    def __init__(self, host: str, port: int, reason: str, code: int) -> None:
        self.code = code
        super().__init__(host, port, reason)


class ProtocolError(ClientConnectionError):
    """The server answered with bytes that are not VoltDB's wire protocol."""


class NoConnectionsError(ClientConnectionError):
    """A call was made while the client has no live connection left."""


class ClientClosedError(ClientConnectionError):
    """The client was used after close()."""
