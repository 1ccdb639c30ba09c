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

__all__ = [
    "CatalogError",
    "ClientResponse",
    "CodecError",
    "Column",
    "ConstraintError",
    "DDLError",
    "PlanningError",
    "SQLError",
    "Status",
    "StorageError",
    "TypeMismatchError",
    "ValueOutOfRangeError",
    "VoltAbortException",
    "VoltError",
    "VoltTable",
    "VoltType",
    "__version__",
]
