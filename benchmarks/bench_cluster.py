# SPDX-License-Identifier: AGPL-3.0-or-later
"""Key-value calls through AsyncClient against a 2-host k=1 cluster (replicated writes).

In one run: the loopback round-trip ceiling at the same concurrency (see bench_client),
then Get and Put through a topology-aware AsyncClient connected to both hosts (each call
goes to its partition's leader; every Put is executed by both replicas before it is
answered). Put runs a second time with write_in_flight calls in flight (256 unless
told; the case is named "Put (256)"), where a host's batches are larger. Printed per
case: calls/s, ratio to the ceiling (measured with in_flight calls), client CPU per call
and the servers' CPU per call (both host processes, utime + stime).

    python benchmarks/bench_cluster.py [calls] [in_flight] [rounds] [write_in_flight]
    pytest benchmarks/bench_cluster.py -m bench                # smoke run, tiny counts
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_client import (  # noqa: E402
    SCHEMA, Result, _drive, alternate, best_of, client_event_loop, kv_caller, load_keys,
    machine_line, proc_cpu_s, report)

from voltdb_py._testing import TempCluster  # noqa: E402
from voltdb_py.client import AsyncClient  # noqa: E402

pytestmark = pytest.mark.bench


def _cpu(pids: list[int]) -> float:
    return sum(proc_cpu_s(p) for p in pids)


def bench_cluster(cl: TempCluster, n: int, in_flight: int, write_in_flight: int
                  ) -> list[Result]:
    out = []
    pids = [s.pid for s in cl.servers]

    async def run(proc: str, k: int, name: str) -> None:
        async with await AsyncClient.connect(cl.addresses, max_in_flight=k) as c:
            await _drive(min(n, 2000), k, kv_caller(c, "Get"))
            c0, s0, t0 = time.process_time(), _cpu(pids), time.perf_counter()
            await _drive(n, k, kv_caller(c, proc))
            t1, c1, s1 = time.perf_counter(), time.process_time(), _cpu(pids)
            out.append(Result(name, n, t1 - t0, c1 - c0, s1 - s0))

    asyncio.run(run("Get", in_flight, "2 hosts k=1 Get"))
    asyncio.run(run("Put", in_flight, "2 hosts k=1 Put"))
    if write_in_flight != in_flight:
        asyncio.run(run("Put", write_in_flight, f"2 hosts k=1 Put ({write_in_flight})"))
    return out


def run_all(n: int = 30_000, in_flight: int = 64, rounds: int = 3,
            write_in_flight: int = 256) -> dict:
    with client_event_loop() as loop_kind:
        print(machine_line(n, in_flight, loop_kind) + "; servers' CPU is both hosts together")
        return _run_all(n, in_flight, rounds, write_in_flight)


def _run_all(n: int, in_flight: int, rounds: int, write_in_flight: int) -> dict:
    with TempCluster(2, kfactor=1, sites_per_host=4, schema=SCHEMA,
                     heartbeat_timeout_s=10) as cl:
        load_keys(cl.addresses)
        echoes, ours = alternate(rounds, n, in_flight,
                                 lambda n, k: bench_cluster(cl, n, k, write_in_flight))
    ceiling = report(echoes, ours, rounds)
    return {"ceiling": ceiling, "ours": best_of(ours)}


@pytest.mark.timeout(300)
def test_bench_cluster_smoke():
    res = run_all(n=300, in_flight=8, rounds=2, write_in_flight=16)
    assert res["ceiling"].rate > 0 and all(r.rate > 0 for r in res["ours"])


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    run_all(*args[:2], rounds=args[2] if len(args) > 2 else 3,
            write_in_flight=args[3] if len(args) > 3 else 256)
