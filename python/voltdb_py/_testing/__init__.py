# SPDX-License-Identifier: AGPL-3.0-or-later
"""Test and benchmark helpers that start real server processes (internal API)."""

from voltdb_py._testing.cluster import TempCluster, TempServer, deployment_xml, wait_until

__all__ = ["TempCluster", "TempServer", "deployment_xml", "wait_until"]
