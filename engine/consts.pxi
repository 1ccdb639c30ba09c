# SPDX-License-Identifier: AGPL-3.0-or-later
# Wire constants, stated once. Type codes are VoltDB's wire codes (voltdb-wire-protocol.md §7).

DEF _T_NULL = 1
DEF _T_TINYINT = 3
DEF _T_SMALLINT = 4
DEF _T_INTEGER = 5
DEF _T_BIGINT = 6
DEF _T_FLOAT = 8
DEF _T_STRING = 9
DEF _T_TIMESTAMP = 11
DEF _T_DECIMAL = 22
DEF _T_VARBINARY = 25

T_NULL = _T_NULL
T_TINYINT = _T_TINYINT
T_SMALLINT = _T_SMALLINT
T_INTEGER = _T_INTEGER
T_BIGINT = _T_BIGINT
T_FLOAT = _T_FLOAT
T_STRING = _T_STRING
T_TIMESTAMP = _T_TIMESTAMP
T_DECIMAL = _T_DECIMAL
T_VARBINARY = _T_VARBINARY

# NULL sentinels: VoltDB reserves the minimum of each integer type for NULL.
NULL_TINYINT = -128
NULL_SMALLINT = -32768
NULL_INTEGER = -2147483648
NULL_BIGINT = -9223372036854775808
NULL_TIMESTAMP = -9223372036854775808
NULL_FLOAT = -1.7E308
# DECIMAL: fixed scale 12, at most 38 digits (26 before the point).
DECIMAL_SCALE = 12
DECIMAL_PRECISION = 38

# ElasticHashinator: a fixed total of tokens on the ring (voltdb-internals.md §1.4).
TOTAL_TOKENS = 16384
TOKEN_INTERVAL = 262143
# TxnEgo: 14 bits of partition id; the MP initiator uses the reserved id 16383.
MP_INIT_PID = 16383
