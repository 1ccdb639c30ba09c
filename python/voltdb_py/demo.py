# SPDX-License-Identifier: AGPL-3.0-or-later
"""The cluster part of ``voltdb-py demo``: a local k-safe cluster that loses a host under load.

Starts a three-host k=1 cluster with ``cluster up`` (real processes, free ports), casts
voter votes through the topology-aware AsyncClient, kills one host with SIGKILL half-way,
and then checks that every acknowledged vote is stored exactly once (the votes table, the
per-contestant view and the acknowledgements agree), before ``cluster down``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from voltdb_py.types import Status

CONTESTANTS = ("Edwina Burnam,Tabatha Gehling,Kelly Clauss,Jessie Alloway,Alana Bregman,"
               "Jessie Eichman")
_UNKNOWN = {Status.RESPONSE_UNKNOWN, Status.CONNECTION_LOST, Status.CONNECTION_TIMEOUT}


def rich_table(title: str, table: Any) -> Any:
    """A VoltTable as a rich Table for the console."""
    from rich.table import Table

    out = Table(title=title)
    for col in table.columns:
        out.add_column(col.name)
    for row in table.rows:
        out.add_row(*(str(v) for v in row))
    return out


def _voter_files() -> tuple[Path, Path]:
    base = Path(__file__).parent / "examples" / "voter"
    return base / "ddl.sql", base / "voter.py"


async def _vote(addresses: list[str], votes: int, seed: int, kill: Any,
                victim: int, console: Any) -> dict[str, Any]:
    from voltdb_py.client import AsyncClient

    rng = random.Random(seed)
    tally = {"accepted": 0, "rejected": 0, "unknown": 0, "failed": 0}
    async with await AsyncClient.connect(addresses, max_in_flight=64, timeout_s=30) as c:
        r = await c.call("Initialize", 6, CONTESTANTS)
        if r.status != Status.SUCCESS:
            raise RuntimeError(f"Initialize failed: {r.status_string}")
        codes = [row[0] for row in
                 (await c.call("@AdHoc", "SELECT area_code FROM area_code_state")).tables[0].rows]
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            phone = rng.choice(codes) * 10_000_000 + rng.randrange(10_000_000)
            async with sem:
                resp = await c.call("Vote", phone, rng.randint(1, 6), 2)
            if resp.status == Status.SUCCESS:
                tally["accepted" if resp.tables[0].scalar() == 0 else "rejected"] += 1
            elif resp.status in _UNKNOWN:
                tally["unknown"] += 1
            else:
                tally["failed"] += 1
                console.print(f"[red]Vote failed: {resp.status_string}")

        t0 = time.perf_counter()
        tasks = []
        for i in range(votes):
            if i == votes // 2:
                kill()
            tasks.append(asyncio.ensure_future(one(i)))
            if len(tasks) >= 256:
                await asyncio.gather(*tasks)
                tasks = []
        await asyncio.gather(*tasks)
        tally["wall"] = time.perf_counter() - t0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the dead host holds no leadership
            topo = (await c.call("@Statistics", "TOPO", 0)).tables[0].rows
            if all(int(str(leader).split(":")[0]) != victim for _p, _s, leader in topo):
                break
            await asyncio.sleep(0.1)
        tally["stored"] = (await c.call("@AdHoc", "SELECT COUNT(*) FROM votes")).tables[0].scalar()
        tally["by_view"] = (await c.call(
            "@AdHoc", "SELECT SUM(num_votes) FROM v_votes_by_contestant_number_state")
        ).tables[0].scalar() or 0
        tally["results"] = (await c.call("Results")).tables[0]
        tally["topo"] = (await c.call("@Statistics", "TOPO", 0)).tables[0].rows
    return tally


def run_cluster_demo(console: Any, votes: int = 20000, hosts: int = 3, seed: int = 1) -> bool:
    """Run the cluster part of the demo; True when nothing was lost or duplicated."""
    from rich.table import Table

    from voltdb_py.node.local import cluster_down, cluster_up

    ddl, procs = _voter_files()
    base = Path(tempfile.mkdtemp(prefix="voltdb-py-demo-cluster-"))
    console.rule(f"local cluster: {hosts} hosts, kfactor 1, one killed under load")
    t0 = time.perf_counter()
    state = cluster_up(base, hosts, 1, 2, schema=[str(ddl)], classes=[str(procs)],
                       port_base=0, heartbeat_timeout_s=2)
    try:
        console.print(f"{hosts} server processes formed a cluster in "
                      f"{time.perf_counter() - t0:.1f} s ({state['hosts'][0]['partitions']} "
                      f"partitions, each on 2 hosts) under {base}")
        by_id = {h["host_id"]: h for h in state["hosts"]}
        victim = by_id[max(by_id)]
        addresses = [f"127.0.0.1:{h['client']}" for h in state["hosts"]]

        def kill() -> None:
            os.kill(victim["pid"], signal.SIGKILL)
            console.print(f"[yellow]killed host {victim['host_id']} (pid {victim['pid']}) "
                          "with SIGKILL half-way through the votes")

        quiet = logging.getLogger("voltdb_py.client")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the lost connection to the killed host is expected
        try:
            tally = asyncio.run(_vote(addresses, votes, seed, kill, victim["host_id"],
                                      console))
        finally:
            quiet.setLevel(level)
        console.print(f"{votes} Vote calls in {tally['wall']:.2f} s "
                      f"({votes / tally['wall']:,.0f} calls/s): {tally['accepted']} accepted, "
                      f"{tally['rejected']} rejected, {tally['unknown']} with unknown outcome "
                      f"(in flight at the killed host), {tally['failed']} failed")
        topo = Table(title="partitions after the failure")
        for col in ("partition", "live replicas (host:site)", "leader"):
            topo.add_column(col)
        for pid, sites, leader in tally["topo"]:
            if pid != 16383:
                topo.add_row(str(pid), sites, leader)
        console.print(topo)
        console.print(rich_table("Results", tally["results"]))
        stored, accepted = tally["stored"], tally["accepted"]
        ok = (accepted <= stored <= accepted + tally["unknown"]
              and tally["by_view"] == stored and tally["failed"] == 0)
        colour = "green" if ok else "red"
        console.print(f"[{colour}]{stored} votes stored, {accepted} acknowledged, "
                      f"{tally['by_view']} counted by the view: "
                      f"{'every acknowledged vote kept, none duplicated' if ok else 'MISMATCH'}")
        return ok
    finally:
        quiet = logging.getLogger("voltdb_py.client")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            cluster_down(base)
        finally:
            quiet.setLevel(level)
        shutil.rmtree(base, ignore_errors=True)
