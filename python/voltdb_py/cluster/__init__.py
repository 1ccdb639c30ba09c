# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cluster layer: topology (pure data + functions), membership, transport, rebalance."""

from voltdb_py.cluster.topology import (
    HostInfo,
    PartitionInfo,
    Topology,
    TopologyError,
    add_hosts,
    fail_host,
    partition_count,
    partition_detection,
    partition_groups,
    place_partitions,
    remove_hosts,
    removable_hosts,
    replace_host,
)

__all__ = [
    "HostInfo",
    "PartitionInfo",
    "Topology",
    "TopologyError",
    "add_hosts",
    "fail_host",
    "partition_count",
    "partition_detection",
    "partition_groups",
    "place_partitions",
    "removable_hosts",
    "remove_hosts",
    "replace_host",
]
