# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltdb_py: VoltDB's partitioned transaction engine, pip-installable, with a compiled core."""

from voltdb_py._version import __version__
from voltdb_py.errors import (
    CatalogError,
    CodecError,
    ConstraintError,
    DDLError,
    PlanningError,
    SQLError,
    StorageError,
    TypeMismatchError,
    ValueOutOfRangeError,
    VoltAbortException,
    VoltError,
)
from voltdb_py.types import ClientResponse, Column, Status, VoltTable, VoltType
from voltdb_py.procedures import Expectation, SQLStmt, VoltProcedure

__all__ = [
    "CatalogError",
    "ClientResponse",
    "CodecError",
    "Column",
    "ConstraintError",
    "DDLError",
    "Database",
    "Expectation",
    "PlanningError",
    "SQLError",
    "SQLStmt",
    "Status",
    "StorageError",
    "TypeMismatchError",
    "ValueOutOfRangeError",
    "VoltAbortException",
    "VoltError",
    "VoltProcedure",
    "VoltTable",
    "VoltType",
    "__version__",
]


def __getattr__(name: str):
    # Database pulls in the SQL layer; import it lazily so light imports stay light.
    if name == "Database":
        from voltdb_py.database import Database
        return Database
    raise AttributeError(f"module 'voltdb_py' has no attribute {name!r}")
