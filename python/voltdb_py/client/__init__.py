# SPDX-License-Identifier: AGPL-3.0-or-later
"""A native VoltDB client: pipelined, topology-aware, asyncio (AsyncClient) or blocking (Client).

See docs/client.md.
"""

from voltdb_py.client._async import (DEFAULT_PORT, MP_PARTITION, AsyncClient, CallFailedError,
                                     parse_hosts)
from voltdb_py.client._sync import Client
from voltdb_py.client.errors import (AuthenticationError, ClientClosedError,
                                     ClientConnectionError, HostUnreachableError,
                                     NoConnectionsError, ProtocolError)
from voltdb_py.types import ClientResponse, Status, VoltType

__all__ = [
    "AsyncClient", "Client", "ClientResponse", "Status", "VoltType",
    "ClientConnectionError", "HostUnreachableError", "AuthenticationError", "ProtocolError",
    "NoConnectionsError", "ClientClosedError", "CallFailedError",
    "parse_hosts", "DEFAULT_PORT", "MP_PARTITION",
]
