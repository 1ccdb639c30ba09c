# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for multi-host cluster tests: topology from @Statistics TOPO, replica checks."""

from __future__ import annotations

from typing import Any

from voltdb_py.types import Status

MP_PARTITION = 16383


def topology(client: Any) -> dict[int, tuple[list[int], int]]:
    """{partition: (live replica host ids, leader host id)} from @Statistics TOPO."""
    r = client.call("@Statistics", "TOPO", 0)
    assert r.status == Status.SUCCESS, r
    out = {}
    for pid, sites, leader in r.tables[0].rows:
        if pid == MP_PARTITION:
            continue
        out[pid] = ([int(s.split(":")[0]) for s in sites.split(",")],
                    int(leader.split(":")[0]))
    return out


def replica_checksums_agree(cluster: Any, topo: dict, dead: set[int] = frozenset()
                            ) -> dict[int, dict[int, int]]:
    """Assert that the live replicas of every partition hold identical rows (read from the
    stopped cluster's roots); return the checksums."""
    sums = cluster.partition_checksums()
    for pid, (replicas, _leader) in topo.items():
        values = {h: sums[h][pid] for h in replicas if h not in dead}
        assert len(set(values.values())) == 1, f"partition {pid} differs: {values}"
    return sums
