# SPDX-License-Identifier: AGPL-3.0-or-later
# cython: language_level=3
"""voltdb_py._engine: the compiled core (hashing, row/key codecs, partition stores, streaming).

One extension module built from fragments (the asyncpg/uvloop pattern), so that
cross-component calls stay C calls. Python code imports it only through voltdb_py.engine.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memcmp

from voltdb_py.errors import (
    VoltError, CodecError, ConstraintError, TypeMismatchError, ValueOutOfRangeError,
    StorageError,
)

include "consts.pxi"
include "hashinator.pxi"
include "tuples.pxi"
include "store.pxi"
include "streaming.pxi"
include "wire.pxi"
include "client.pxi"
include "cluster.pxi"
include "server.pxi"
include "fastpath.pxi"
