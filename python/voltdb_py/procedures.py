# SPDX-License-Identifier: AGPL-3.0-or-later
"""Stored procedures, VoltDB's way: SQLStmt attributes, queue_sql/execute_sql and run().

Example::

    from voltdb_py import VoltProcedure, SQLStmt, VoltAbortException

    class Vote(VoltProcedure):
        check = SQLStmt("SELECT COUNT(*) FROM votes WHERE phone_number = ?;")
        insert = SQLStmt("INSERT INTO votes VALUES (?, ?, ?);")

        def run(self, phone_number: int, state: str, contestant: int):
            self.queue_sql(self.check, phone_number)
            if self.execute_sql()[0].scalar() >= 10:
                return 1
            self.queue_sql(self.insert, phone_number, state, contestant)
            self.execute_sql(final=True)
            return 0

A procedure instance is made for each call; it must not keep state between calls
(replicas must reach the same result from the same parameters).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import inspect
import random
from typing import Any

from voltdb_py.errors import ExpectationError, SQLError
from voltdb_py.types import VoltTable, VoltType, micros_to_datetime


class Expectation(enum.Enum):
    """VoltDB's result expectations for a queued statement."""

    EXPECT_EMPTY = "empty"
    EXPECT_ONE_ROW = "one_row"
    EXPECT_ZERO_OR_ONE_ROW = "zero_or_one_row"
    EXPECT_NON_EMPTY = "non_empty"
    EXPECT_SCALAR = "scalar"
    EXPECT_SCALAR_LONG = "scalar_long"
    EXPECT_SCALAR_MATCH = "scalar_match"


class SQLStmt:
    """A SQL statement declared as a procedure class attribute; planned once per catalog."""

    __slots__ = ("sql", "name")

    def __init__(self, sql: str) -> None:
        if not isinstance(sql, str) or not sql.strip():
            raise SQLError("SQLStmt needs a non-empty SQL string")
        self.sql = sql
        self.name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"SQLStmt({self.sql!r})"


_ANNOTATION_TYPES = {
    int: VoltType.BIGINT,
    float: VoltType.FLOAT,
    str: VoltType.STRING,
    bytes: VoltType.VARBINARY,
    decimal.Decimal: VoltType.DECIMAL,
    _dt.datetime: VoltType.TIMESTAMP,
    "int": VoltType.BIGINT,
    "float": VoltType.FLOAT,
    "str": VoltType.STRING,
    "bytes": VoltType.VARBINARY,
    "Decimal": VoltType.DECIMAL,
    "decimal.Decimal": VoltType.DECIMAL,
    "datetime": VoltType.TIMESTAMP,
    "datetime.datetime": VoltType.TIMESTAMP,
}


def declared_param_types(cls: type) -> list[VoltType | None] | None:
    """Return the VoltTypes of run()'s parameters (from PARAM_TYPES or annotations), or None.

    None means *args: any count. An entry is None when a parameter has no usable annotation.
    """
    explicit = getattr(cls, "PARAM_TYPES", None)
    run = getattr(cls, "run", None)
    if run is None:
        raise SQLError(f"procedure class {cls.__name__} has no run() method")
    sig = inspect.signature(run)
    params = list(sig.parameters.values())[1:]  # drop self
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return None if explicit is None else [VoltType(t) for t in explicit]
    if explicit is not None:
        types = [VoltType(t) if not isinstance(t, str) else VoltType.from_sql_name(t)
                 for t in explicit]
        if len(types) != len(params):
            raise SQLError(f"{cls.__name__}.PARAM_TYPES has {len(types)} types for "
                           f"{len(params)} run() parameters")
        return types
    out: list[VoltType | None] = []
    for p in params:
        ann = p.annotation
        if isinstance(ann, VoltType):
            out.append(ann)
        else:
            out.append(_ANNOTATION_TYPES.get(ann))
    return out


class VoltProcedure:
    """Base class of Python stored procedures (VoltDB's VoltProcedure).

    Subclasses declare SQLStmt class attributes and a run(self, ...) method; run() queues
    statements with queue_sql(), runs them with execute_sql() and returns a VoltTable, a
    list of VoltTables, a scalar (sent as a one-row, one-column table) or None.
    Raising VoltAbortException (or any exception) rolls back everything the call did.
    Optional ``PARAM_TYPES`` (a list of VoltTypes) or annotations of run() (int, float,
    str, bytes, Decimal, datetime) declare parameter types: arguments are coerced to them.
    """

    EXPECT_EMPTY = Expectation.EXPECT_EMPTY
    EXPECT_ONE_ROW = Expectation.EXPECT_ONE_ROW
    EXPECT_ZERO_OR_ONE_ROW = Expectation.EXPECT_ZERO_OR_ONE_ROW
    EXPECT_NON_EMPTY = Expectation.EXPECT_NON_EMPTY
    EXPECT_SCALAR = Expectation.EXPECT_SCALAR
    EXPECT_SCALAR_LONG = Expectation.EXPECT_SCALAR_LONG
    EXPECT_SCALAR_MATCH = Expectation.EXPECT_SCALAR_MATCH

    # Set by the runner before run() is called.
    _txn: Any = None

    def queue_sql(self, stmt: SQLStmt, *params: Any, expect: Expectation | None = None,
                  expect_value: Any = None) -> None:
        """Queue stmt with params for the next execute_sql(), with an optional expectation."""
        if not isinstance(stmt, SQLStmt):
            raise SQLError(f"queue_sql needs a SQLStmt, not {type(stmt).__name__}")
        self._txn.queue(stmt, params, expect, expect_value)

    # VoltDB's Java spelling, for ported code.
    voltQueueSQL = queue_sql

    def execute_sql(self, final: bool = False) -> list[VoltTable]:
        """Run every queued statement in order; return one result table per statement."""
        return self._txn.execute(final)

    voltExecuteSQL = execute_sql

    def set_app_status_code(self, code: int) -> None:
        """Set the app status byte returned with the response (-128 means unset)."""
        if not -128 <= int(code) <= 127:
            raise ValueError(f"app status code {code} is not a byte")
        self._txn.app_status = int(code)

    setAppStatusCode = set_app_status_code

    def set_app_status_string(self, text: str) -> None:
        """Set the app status string returned with the response."""
        self._txn.app_status_string = str(text)

    setAppStatusString = set_app_status_string

    def get_transaction_time(self) -> _dt.datetime:
        """The transaction's timestamp (the same on every replica), as a naive UTC datetime."""
        return micros_to_datetime(self._txn.timestamp_us)

    getTransactionTime = get_transaction_time

    def get_unique_id(self) -> int:
        """A cluster-unique, deterministic id of this transaction (VoltDB's getUniqueId)."""
        return self._txn.txn_id

    getUniqueId = get_unique_id

    def get_seeded_random(self) -> random.Random:
        """A random generator seeded by the transaction id, so replicas draw the same values."""
        rng = self._txn.rng
        if rng is None:
            rng = self._txn.rng = random.Random(self._txn.txn_id)
        return rng

    getSeededRandomNumberGenerator = get_seeded_random

    @property
    def partition_id(self) -> int | None:
        """The partition a single-partition call runs in (None for multi-partition calls)."""
        return self._txn.partition_id

    def run(self, *params: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


def check_expectation(stmt: SQLStmt, table: VoltTable, expect: Expectation | None,
                      expect_value: Any) -> None:
    """Raise ExpectationError when table does not meet expect (VoltDB's messages)."""
    if expect is None:
        return
    n = len(table.rows)
    what = f"statement {stmt.name or stmt.sql!r}"
    if expect is Expectation.EXPECT_EMPTY and n != 0:
        raise ExpectationError(f"Expected zero row, but got {n} for {what}")
    if expect is Expectation.EXPECT_ONE_ROW and n != 1:
        raise ExpectationError(f"Expected one row, but got {n} for {what}")
    if expect is Expectation.EXPECT_ZERO_OR_ONE_ROW and n > 1:
        raise ExpectationError(f"Expected zero or one rows, but got {n} for {what}")
    if expect is Expectation.EXPECT_NON_EMPTY and n == 0:
        raise ExpectationError(f"Expected one or more rows, but got {n} for {what}")
    if expect in (Expectation.EXPECT_SCALAR, Expectation.EXPECT_SCALAR_LONG,
                  Expectation.EXPECT_SCALAR_MATCH):
        if n != 1 or len(table.columns) != 1:
            raise ExpectationError(f"Expected scalar value, but got {n} rows for {what}")
        if expect is Expectation.EXPECT_SCALAR_LONG and not isinstance(table.rows[0][0], int):
            raise ExpectationError(f"Expected a scalar long value for {what}")
        if expect is Expectation.EXPECT_SCALAR_MATCH and table.rows[0][0] != expect_value:
            raise ExpectationError(
                f"Expected scalar value {expect_value!r}, but got {table.rows[0][0]!r} for {what}")


def statements_of(cls: type) -> dict[str, SQLStmt]:
    """Return the SQLStmt attributes of a procedure class (inherited ones included)."""
    out: dict[str, SQLStmt] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, SQLStmt):
                out[name] = value
    return out
