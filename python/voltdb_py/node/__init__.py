# SPDX-License-Identifier: AGPL-3.0-or-later
"""A server node: VoltDB's client wire protocol in front of the embedded Database.

``voltdb-py init`` prepares a root directory (:mod:`voltdb_py.node.root`);
``voltdb-py start`` serves it (:mod:`voltdb_py.node.main`, :mod:`voltdb_py.node.server`).
"""

from voltdb_py.node.root import RootError, init_root, is_root, load_root
from voltdb_py.node.server import NodeServer, ServerConfig, parse_endpoint

__all__ = ["NodeServer", "RootError", "ServerConfig", "init_root", "is_root", "load_root",
           "parse_endpoint"]
