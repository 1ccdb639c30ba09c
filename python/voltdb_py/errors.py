# SPDX-License-Identifier: AGPL-3.0-or-later
"""Exceptions of voltdb_py. A leaf module: the compiled engine imports it too."""


class VoltError(Exception):
    """Base class of every voltdb_py error."""


class CodecError(VoltError, ValueError):
    """Encoded bytes (a row, key, chunk, config or frame) are malformed."""


class TypeMismatchError(VoltError, TypeError):
    """A value has a type that cannot be used for the column or parameter it is given to."""


class ValueOutOfRangeError(VoltError, ValueError):
    """A value is outside its column's range or longer than its column's size."""


class ConstraintError(VoltError):
    """A write violates a constraint: PRIMARY KEY, UNIQUE, ASSUMEUNIQUE or NOT NULL."""


class StorageError(VoltError):
    """The LMDB store failed or was used after close."""


class SQLError(VoltError):
    """A SQL statement cannot be parsed, planned or executed."""


class DDLError(SQLError):
    """A DDL statement is malformed or breaks one of VoltDB's schema rules."""


class CatalogError(VoltError):
    """A name (table, column, index, view, procedure, class) is unknown or already used."""


class PlanningError(SQLError):
    """A statement parses but cannot be planned (unsupported or against VoltDB's rules)."""


class MispartitionedError(VoltError):
    """A call reached a partition that does not own its partitioning value."""


class DatabaseClosedError(VoltError):
    """The database was used after close()."""


class VoltAbortException(VoltError):
    """Raised by a stored procedure to roll back everything the call did (VoltDB's name)."""


class ExpectationError(VoltAbortException):
    """A queued statement's result did not meet its declared expectation (e.g. one row)."""
