# SPDX-License-Identifier: AGPL-3.0-or-later
"""A native VoltDB client: pipelined, topology-aware, asyncio (AsyncClient) or blocking (Client).

See docs/client.md.
"""

from voltdb_py.client._async import (
                                     DEFAULT_PORT,
                                     MP_PARTITION,
                                     AsyncClient,
                                     CallFailedError,
                                     parse_hosts,
)
from voltdb_py.client._sync import Client
from voltdb_py.client.errors import (
                                     AuthenticationError,
                                     ClientClosedError,
                                     ClientConnectionError,
                                     HostUnreachableError,
                                     NoConnectionsError,
                                     ProtocolError,
)
from voltdb_py.types import ClientResponse, Status, VoltType

__all__ = [
                                     "DEFAULT_PORT",
                                     "MP_PARTITION",
                                     "AsyncClient",
                                     "AuthenticationError",
                                     "CallFailedError",
                                     "Client",
                                     "ClientClosedError",
                                     "ClientConnectionError",
                                     "ClientResponse",
                                     "HostUnreachableError",
                                     "NoConnectionsError",
                                     "ProtocolError",
                                     "Status",
                                     "VoltType",
                                     "parse_hosts",
]
