# SPDX-License-Identifier: AGPL-3.0-or-later
"""Row codec speed: TupleSchema encode/decode, single and batch, beside msgpack on the same tuples."""

from __future__ import annotations

import decimal

import msgpack
import pytest

from voltdb_py.engine import _engine

pytestmark = pytest.mark.bench

N_BATCH = 1000

# (vtype, size, in_bytes, nullable): an ID/name/balance table and a wider mixed one.
SCHEMA3 = [(6, 0, False, False), (9, 32, False, True), (8, 0, False, True)]
ROW3 = (123456789, "customer-000042", 1234.5)
SCHEMA10 = [(5, 0, False, False), (6, 0, False, False), (9, 64, False, True),
            (9, 16, True, True), (8, 0, False, True), (11, 0, False, True),
            (3, 0, False, True), (4, 0, False, True), (25, 32, False, True),
            (22, 0, False, True)]
ROW10 = (42, 9_000_000_000, "a somewhat longer description", "short", 3.25,
         1_700_000_000_000_000, 7, -300, b"\x00\x01binary", decimal.Decimal("12.5"))
# msgpack has no Decimal: give it the unscaled int, as a fair raw primitive would.
ROW10_MSGPACK = ROW10[:-1] + (12_500_000_000_000,)

CASES = {
    "3col": (SCHEMA3, ROW3, ROW3),
    "10col": (SCHEMA10, ROW10, ROW10_MSGPACK),
}
IMPLS = ["engine", "msgpack"]


def _schema(cols):
    return _engine.TupleSchema(1, cols, [0], 0, True, [(2, [0], True)])


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_encode_row(benchmark, case, impl):
    cols, row, mrow = CASES[case]
    benchmark.group = f"encode single {case}"
    if impl == "engine":
        encode = _schema(cols).encode_row
        out = benchmark(encode, row)
    else:
        out = benchmark(msgpack.packb, mrow)
    assert isinstance(out, bytes)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_decode_row(benchmark, case, impl):
    cols, row, mrow = CASES[case]
    benchmark.group = f"decode single {case}"
    if impl == "engine":
        schema = _schema(cols)
        out = benchmark(schema.decode_row, schema.encode_row(row))
        assert out == row
    else:
        out = benchmark(msgpack.unpackb, msgpack.packb(mrow), use_list=False)
        assert out == mrow


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_encode_rows_batch(benchmark, case, impl):
    cols, row, mrow = CASES[case]
    benchmark.group = f"encode batch x{N_BATCH} {case}"
    if impl == "engine":
        rows = [row] * N_BATCH
        out = benchmark(_schema(cols).encode_rows, rows)
    else:
        rows = [mrow] * N_BATCH
        packb = msgpack.packb
        out = benchmark(lambda: [packb(r) for r in rows])
    assert len(out) == N_BATCH


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_decode_rows_batch(benchmark, case, impl):
    cols, row, mrow = CASES[case]
    benchmark.group = f"decode batch x{N_BATCH} {case}"
    if impl == "engine":
        schema = _schema(cols)
        bufs = schema.encode_rows([row] * N_BATCH)
        out = benchmark(schema.decode_rows, bufs)
    else:
        bufs = [msgpack.packb(mrow)] * N_BATCH
        unpackb = msgpack.unpackb
        out = benchmark(lambda: [unpackb(b, use_list=False) for b in bufs])
    assert len(out) == N_BATCH


@pytest.mark.parametrize("impl", ["engine", "oracle"])
def test_encode_key(benchmark, impl):
    types = [9, 6, 22]
    values = ("customer-000042", 123456789, decimal.Decimal("12.5"))
    benchmark.group = "encode key 3 values"
    if impl == "engine":
        out = benchmark(_engine.encode_key, types, values)
    else:
        from support import codec_oracle

        out = benchmark(codec_oracle.encode_key, types, values)
    assert out == _engine.encode_key(types, values)
