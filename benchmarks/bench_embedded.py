# SPDX-License-Identifier: AGPL-3.0-or-later
"""Embedded-database throughput beside the raw LMDB primitives, measured in the same run.

Run: ``python benchmarks/bench_embedded.py [--rows N] [--calls N]``. Prints calls/s, CPU
time per call and the ratio to the raw py-lmdb primitive for:
key-value get and put procedures on a partitioned table, the voter Vote procedure
(three look-ups, an insert, two view updates), and a full-table COUNT/SUM scan.
As a pytest test (benchmark smoke pass) it runs with tiny counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import lmdb
import pytest

from voltdb_py import Database, Status
from voltdb_py.demo import CONTESTANTS, _voter_files

pytestmark = pytest.mark.bench
BATCH = 100  # calls per call_many group commit

KV_DDL = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARBINARY(100) NOT NULL);
PARTITION TABLE kv ON COLUMN k;
CREATE PROCEDURE KvGet PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE KvPut PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE TABLE nums (id BIGINT NOT NULL PRIMARY KEY, a BIGINT, b FLOAT);
PARTITION TABLE nums ON COLUMN id;
"""


def _timed(fn, n):
    cpu0, t0 = time.process_time(), time.perf_counter()
    fn(n)
    return time.perf_counter() - t0, time.process_time() - cpu0


def raw_lmdb(dirpath: Path, rows: int, calls: int) -> dict[str, tuple[float, float]]:
    """The raw primitives: py-lmdb put (one txn each), get (fresh read txn each), scan."""
    # The same environment settings as Database.open's defaults (writemap, no fsync per
    # commit), so the ratios compare like with like.
    env = lmdb.open(str(dirpath), map_size=1 << 32, sync=False, metasync=False, writemap=True)
    value = b"x" * 100
    keys = [i.to_bytes(8, "big") for i in range(rows)]
    # Procedures write at token-ordered (effectively random) positions: so does the baseline.
    shuffled = keys[:]
    random.Random(2).shuffle(shuffled)
    out = {}

    def put(n):
        for i in range(n):
            txn = env.begin(write=True)
            txn.put(shuffled[i % rows], value)
            txn.commit()

    out["put"] = _timed(put, calls)

    def put_batched(n):
        for start in range(0, n, BATCH):
            txn = env.begin(write=True)
            for i in range(start, min(n, start + BATCH)):
                txn.put(shuffled[(i * 7) % rows], value)
            txn.commit()

    out["put_batched"] = _timed(put_batched, calls)
    with env.begin(write=True) as txn:
        for k in keys:
            txn.put(k, value)
    rng = random.Random(1)
    probe = [keys[rng.randrange(rows)] for _ in range(calls)]

    def get(n):
        for i in range(n):
            with env.begin() as txn:
                txn.get(probe[i])

    out["get"] = _timed(get, calls)

    def scan(n):
        for _ in range(n):
            with env.begin() as txn:
                for _kv in txn.cursor():
                    pass

    out["scan"] = _timed(scan, 1)
    env.close()
    return out


def embedded(dirpath: Path, rows: int, calls: int, partitions: int) -> dict:
    out = {}
    with Database.open(dirpath / "db", sites_per_host=partitions) as db:
        db.execute_ddl(KV_DDL)
        value = b"x" * 100

        def put(n):
            for i in range(n):
                r = db.call("KvPut", i % rows, value)
                assert r.status == Status.SUCCESS, r.status_string

        out["put"] = _timed(put, calls)

        def put_batched(n):
            for start in range(0, n, BATCH):
                batch = [("KvPut", ((i * 7) % rows, value))
                         for i in range(start, min(n, start + BATCH))]
                for r in db.call_many(batch):
                    assert r.status == Status.SUCCESS, r.status_string

        out["put_batched"] = _timed(put_batched, calls)
        for i in range(calls, rows):
            db.call("KvPut", i, value)
        rng = random.Random(1)
        probe = [rng.randrange(rows) for _ in range(calls)]

        def get(n):
            call = db.call
            for i in range(n):
                call("KvGet", probe[i])

        out["get"] = _timed(get, calls)
        for i in range(rows):
            db.adhoc("INSERT INTO nums VALUES (?, ?, ?)", i, i, 1.5)

        def scan(n):
            for _ in range(n):
                r = db.adhoc("SELECT COUNT(*), SUM(a) FROM nums")
                assert r.tables[0].rows[0][0] == rows

        out["scan"] = _timed(scan, 1)
        ddl, procs = _voter_files()
        db.load_classes(procs)
        db.execute_ddl(ddl.read_text())
        db.call("Initialize", 6, CONTESTANTS)
        codes = [r[0] for r in db.adhoc("SELECT area_code FROM area_code_state").tables[0].rows]
        votes = [(rng.choice(codes) * 10_000_000 + rng.randrange(10_000_000),
                  rng.randint(1, 6)) for _ in range(calls)]

        def vote(n):
            for i in range(n):
                phone, c = votes[i]
                r = db.call("Vote", phone, c, 10)
                assert r.status == Status.SUCCESS, r.status_string

        out["vote"] = _timed(vote, calls)
    return out


def run(rows: int, calls: int, partitions: int = 8, report=print) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        raw = raw_lmdb(base / "raw", rows, calls)
        emb = embedded(base, rows, calls, partitions)
    report(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
           f"{platform.python_version()}, lmdb {lmdb.version()}, py-lmdb {lmdb.__version__}")
    report(f"rows={rows} calls={calls} partitions={partitions}")
    report(f"{'operation':<38}{'per s':>12}{'CPU us/op':>12}{'x raw CPU':>11}")
    lines = [
        ("raw py-lmdb get (read txn each)", raw["get"], calls, None),
        ("KvGet procedure (SP read)", emb["get"], calls, raw["get"]),
        ("raw py-lmdb put (write txn each)", raw["put"], calls, None),
        ("KvPut procedure (SP upsert)", emb["put"], calls, raw["put"]),
        (f"raw py-lmdb put ({BATCH} per txn)", raw["put_batched"], calls, None),
        (f"KvPut via call_many ({BATCH}/commit)", emb["put_batched"], calls,
         raw["put_batched"]),
        ("Vote procedure (voter)", emb["vote"], calls, raw["put"]),
        ("raw py-lmdb cursor scan (rows)", raw["scan"], rows, None),
        ("COUNT/SUM scan (rows)", emb["scan"], rows, raw["scan"]),
    ]
    result = {}
    for name, (wall, cpu), n, base_t in lines:
        ratio = f"{(cpu / n) / (base_t[1] / n):>10.1f}x" if base_t else f"{'':>11}"
        report(f"{name:<38}{n / wall:>12,.0f}{cpu / n * 1e6:>12.2f}{ratio}")
        result[name] = n / wall
    return result


def test_embedded_benchmark_smoke():
    figures = run(rows=300, calls=200, partitions=2, report=lambda s: None)
    assert all(v > 0 for v in figures.values())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=8)
    a = ap.parse_args()
    sys.exit(0 if run(a.rows, a.calls, a.partitions) else 1)
