# SPDX-License-Identifier: AGPL-3.0-or-later
"""The server's root directory (VoltDB's voltdbroot): what ``voltdb-py init`` prepares.

Layout of a root directory ``D``::

    D/.voltdb_py_root          marker (JSON: format, creation time)
    D/config/deployment.xml    the deployment, as given to init
    D/config/cluster.json      cluster metadata: hosts, partitions, topology, hashinator version
    D/database/                the embedded Database (LMDB, loaded classes, catalog)
    D/ready.json               written by a running server (its ports and pid)
    D/forming.json             a cluster host waiting for the others (removed when ready)
    D/metadata/                a cluster host's Raft journal (voltdb_py.cluster.metadata)
    D/log/                     server output when started with --background

``config/cluster.json`` describes the root as a one-host cluster. A host started with
``--count N`` > 1 takes its topology from the Raft metadata instead, and its database
gets the cluster's partition count when the cluster first forms.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltdb_py.cluster.topology import HostInfo, Topology, place_partitions
from voltdb_py.deployment import Deployment, DeploymentError, parse_deployment
from voltdb_py.errors import VoltError

MARKER = ".voltdb_py_root"
ROOT_FORMAT = 1
DEPLOYMENT_FILE = Path("config") / "deployment.xml"
CLUSTER_FILE = Path("config") / "cluster.json"
DATABASE_DIR = "database"
READY_FILE = "ready.json"
LOCK_FILE = ".lock"
LOG_DIR = "log"


class RootError(VoltError):
    """A root directory cannot be initialized or used; the message is meant for the user."""


@dataclass(frozen=True)
class ClusterState:
    """Cluster metadata stored in config/cluster.json."""

    host_count: int
    sites_per_host: int
    kfactor: int
    topology: Topology
    hashinator_version: int = 1
    cluster_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"format": ROOT_FORMAT, "host_count": self.host_count,
                "sites_per_host": self.sites_per_host, "kfactor": self.kfactor,
                "hashinator_version": self.hashinator_version, "cluster_id": self.cluster_id,
                "topology": self.topology.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        """Inverse of :meth:`to_dict`."""
        return cls(int(data["host_count"]), int(data["sites_per_host"]), int(data["kfactor"]),
                   Topology.from_dict(data["topology"]), int(data["hashinator_version"]),
                   int(data.get("cluster_id", 0)))


def is_root(directory: str | os.PathLike[str]) -> bool:
    """Whether directory holds an initialized root."""
    return (Path(directory) / MARKER).is_file()


def _split_list(items: list[str] | None) -> list[Path]:
    """Flatten repeated and comma-separated path options (VoltDB takes both)."""
    out = []
    for item in items or ():
        out += [Path(p.strip()) for p in item.split(",") if p.strip()]
    return out


def init_root(directory: str | os.PathLike[str], config: str | os.PathLike[str] | None,
              schemas: list[str] | None = None, classes: list[str] | None = None,
              force: bool = False) -> list[str]:
    """Prepare directory as a server root (``voltdb-py init``): the same for every host
    of a cluster.

    The root is built in a sibling staging directory and moved into place only when
    everything (deployment, classes, schema) succeeded, so a failure leaves nothing
    half-made and an existing root untouched.

    :returns: warnings for the user (deployment elements accepted but not implemented).
    :raises RootError: the directory is in use or not empty, or an input is invalid.
    """
    from voltdb_py.database import Database

    root = Path(directory).absolute()
    notes: list[str] = []
    if root.exists():
        if not root.is_dir():
            raise RootError(f"{root} exists and is not a directory")
        if is_root(root):
            if not force:
                raise RootError(f"{root} is already initialized; use --force to "
                                "replace it (its data is deleted)")
            if (root / READY_FILE).exists() and _ready_pid_alive(root / READY_FILE):
                raise RootError(f"a server is running in {root}; stop it before --force")
        elif any(root.iterdir()):
            raise RootError(f"{root} is not empty and is not a voltdb_py root; "
                            "choose an empty or new directory")
    if config is not None:
        cfg = Path(config)
        if not cfg.is_file():
            raise RootError(f"deployment file not found: {cfg}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                deployment = parse_deployment(cfg)
            except DeploymentError as exc:
                raise RootError(f"invalid deployment {cfg}: {exc}") from None
        notes += [str(w.message) for w in caught]
        deployment_xml = cfg.read_bytes()
    else:
        deployment = Deployment()
        deployment_xml = deployment.to_xml().encode()
    cl = deployment.cluster
    schema_paths = _split_list(schemas)
    class_paths = _split_list(classes)
    for p in class_paths + schema_paths:
        if not p.exists():
            raise RootError(f"file not found: {p}")
    ddl_texts = []
    for p in schema_paths:
        try:
            ddl_texts.append((p, p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise RootError(f"cannot read schema {p}: {exc}") from None

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.init-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        (staging / "config").mkdir(parents=True)
        (staging / DEPLOYMENT_FILE).write_bytes(deployment_xml)
        topo = place_partitions([HostInfo(0, cl.sites_per_host)], 0)
        state = ClusterState(1, cl.sites_per_host, 0, topo, 1, cl.cluster_id or 0)
        (staging / CLUSTER_FILE).write_text(json.dumps(state.to_dict(), indent=1))
        with Database.open(staging / DATABASE_DIR, sites_per_host=cl.sites_per_host) as db:
            for p in class_paths:
                try:
                    db.load_classes(p)
                except (VoltError, OSError) as exc:
                    raise RootError(f"cannot load classes from {p}: {exc}") from None
            for p, text in ddl_texts:
                try:
                    db.execute_ddl(text)
                except VoltError as exc:
                    raise RootError(f"schema {p}: {exc}") from None
        (staging / MARKER).write_text(json.dumps({"format": ROOT_FORMAT,
                                                  "created": time.time()}))
        if root.exists():
            trash = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, trash)
            os.replace(staging, root)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return notes


def _ready_pid_alive(path: Path) -> bool:
    try:
        pid = int(json.loads(path.read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class RootContents:
    """An initialized root as a server reads it."""

    path: Path
    deployment: Deployment
    cluster: ClusterState

    @property
    def database_path(self) -> Path:
        return self.path / DATABASE_DIR


def load_root(directory: str | os.PathLike[str]) -> RootContents:
    """Read an initialized root (:class:`RootError` if it is not one)."""
    root = Path(directory).absolute()
    if not is_root(root):
        raise RootError(f"{root} is not an initialized voltdb_py root: "
                        f"run 'voltdb-py init --dir {directory}' first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            deployment = parse_deployment(root / DEPLOYMENT_FILE)
        except DeploymentError as exc:
            raise RootError(f"{root / DEPLOYMENT_FILE}: {exc}") from None
    try:
        cluster = ClusterState.from_dict(json.loads((root / CLUSTER_FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError, VoltError) as exc:
        raise RootError(f"{root / CLUSTER_FILE} is unreadable: {exc}") from None
    return RootContents(root, deployment, cluster)
