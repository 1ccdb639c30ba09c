# SPDX-License-Identifier: AGPL-3.0-or-later
"""Command line: ``voltdb-py demo``, ``init``, ``start`` and ``cluster up|down``."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from voltdb_py._version import __version__

def run_demo(votes: int, partitions: int, directory: str | None, seed: int,
             cluster_votes: int = 0) -> int:
    """The voter demo: embedded (load the schema, vote, show results, reopen and verify),
    then, with cluster_votes, a local 3-host k=1 cluster that loses a host under load."""
    from rich.console import Console
    from rich.table import Table

    from voltdb_py import Database, Status
    from voltdb_py.demo import CONTESTANTS, _voter_files, rich_table, run_cluster_demo

    console = Console(width=max(100, shutil.get_terminal_size((100, 24)).columns))
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="voltdb-py-demo-"))
    ddl, procs = _voter_files()
    rng = random.Random(seed)
    console.rule(f"voltdb_py {__version__}: embedded voter demo")
    console.print(f"database directory: {root} ({partitions} partitions)")
    try:
        with Database.open(root / "db", sites_per_host=partitions) as db:
            if "VOTES" not in db.catalog.tables:
                db.load_classes(procs)
                db.execute_ddl(ddl.read_text())
            resp = db.call("Initialize", 6, CONTESTANTS)
            if resp.status != Status.SUCCESS:
                console.print(f"[red]Initialize failed: {resp.status_string}")
                return 1
            before = db.adhoc("SELECT COUNT(*) FROM votes").tables[0].scalar()
            area_codes = [r[0] for r in
                          db.adhoc("SELECT area_code FROM area_code_state").tables[0].rows]
            accepted = rejected = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(votes):
                phone = rng.choice(area_codes) * 10_000_000 + rng.randrange(10_000_000)
                if rng.random() < 0.05:
                    phone = 2125551234  # one busy voter: over the limit after 2 votes
                r = db.call("Vote", phone, rng.randint(1, 6), 2)
                if r.status != Status.SUCCESS:
                    console.print(f"[red]Vote failed: {r.status_string}")
                    return 1
                if r.tables[0].scalar() == 0:
                    accepted += 1
                else:
                    rejected += 1
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            console.print(f"{votes} Vote calls in {wall:.2f} s: {votes / wall:,.0f} calls/s, "
                          f"{cpu / votes * 1e6:.1f} us CPU per call; "
                          f"{accepted} accepted, {rejected} rejected")
            console.print(rich_table("Results", db.call("Results").tables[0]))
            stats = db.call("@Statistics", "TABLE", 0).tables[0]
            console.print("VOTES rows per partition:")
            per = Table()
            per.add_column("partition")
            per.add_column("rows", justify="right")
            ti, pi, ci = (stats.column_index("TABLE_NAME"), stats.column_index("PARTITION_ID"),
                          stats.column_index("TUPLE_COUNT"))
            total = 0
            for row in sorted(stats.rows, key=lambda r: r[pi]):
                if row[ti] == "VOTES":
                    per.add_row(str(row[pi]), f"{row[ci]:,}")
                    total += row[ci]
            console.print(per)
            expected = before + accepted
        with Database.open(root / "db") as db:
            after = db.adhoc("SELECT COUNT(*) FROM votes").tables[0].scalar()
            by_view = db.adhoc(
                "SELECT SUM(num_votes) FROM v_votes_by_contestant_number_state").tables[0].scalar()
        ok = after == expected == total == (by_view or 0)
        colour = "green" if ok else "red"
        console.print(f"[{colour}]after reopening: {after} votes stored, {expected} expected, "
                      f"{by_view} counted by the view: "
                      f"{'nothing lost or duplicated' if ok else 'MISMATCH'}")
        if ok and cluster_votes:
            ok = run_cluster_demo(console, cluster_votes, seed=seed)
        return 0 if ok else 1
    finally:
        if directory is None:
            shutil.rmtree(root, ignore_errors=True)


def run_init(args: argparse.Namespace) -> int:
    """voltdb-py init: prepare a server root directory; 1 with a message on failure."""
    from voltdb_py.node.root import RootError, init_root

    try:
        notes = init_root(args.dir, args.config, args.schema, args.classes, force=args.force)
    except RootError as exc:
        print(f"voltdb-py init: error: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"voltdb-py init: warning: {note}", file=sys.stderr)
    print(f"Initialized VoltDB root directory {Path(args.dir).absolute()}")
    return 0


def run_start(args: argparse.Namespace, argv: list[str]) -> int:
    """voltdb-py start: serve an initialized root (foreground, or detached with --background)."""
    from voltdb_py._loop import EVENT_LOOP_ENV, use_event_loop
    from voltdb_py.node.main import serve, start_background
    from voltdb_py.node.root import RootError, load_root
    from voltdb_py.errors import VoltError
    from voltdb_py.node.cluster import (
        DEFAULT_INTERNAL_PORT,
        DEFAULT_RAFT_PORT,
        ClusterError,
        ClusterOptions,
    )
    from voltdb_py.node.server import ServerConfig, parse_endpoint

    def fail(msg: str) -> int:
        print(f"voltdb-py start: error: {msg}", file=sys.stderr)
        return 1

    if args.count is not None and args.count < 1:
        return fail(f"--count must be >= 1, not {args.count}")
    try:
        contents = load_root(args.dir)
    except RootError as exc:
        return fail(str(exc))
    cl = contents.deployment.cluster
    count = args.count if args.count is not None else (cl.host_count or 1)
    if cl.kfactor + 1 > count:
        return fail(f"System requesting {cl.kfactor + 1} replicas but there are only "
                    f"{count} eligible hosts (kfactor={cl.kfactor}; start with "
                    f"--count {cl.kfactor + 1} or more)")
    if args.add and count == 1:
        return fail("Cluster is already complete: it has 1 of 1 hosts, "
                    "so no host can be added")
    seeds = []
    for h in (args.host or "").split(","):
        h = h.strip()
        if h:
            name, sep, port = h.rpartition(":")
            if not sep:
                name, port = h, str(DEFAULT_INTERNAL_PORT)
            if not port.isdigit() or not 0 < int(port) <= 65535 or not name.strip("[]"):
                return fail(f"--host {args.host!r}: {h!r} is not host[:port]")
            seeds.append((name.strip("[]"), int(port)))
    try:
        client = parse_endpoint(args.client, 21212)
        admin = parse_endpoint(args.admin, 21211)
        http = parse_endpoint(args.http, 8080) if args.http is not None else None
        internal = parse_endpoint(args.internal, DEFAULT_INTERNAL_PORT)
        raft = parse_endpoint(args.zookeeper, DEFAULT_RAFT_PORT)
    except ValueError as exc:
        return fail(str(exc))
    cluster = None
    if count > 1 or args.add:
        if not seeds:
            seeds = [("127.0.0.1", internal[1] or DEFAULT_INTERNAL_PORT)]
        cluster = ClusterOptions(seeds, count, internal, raft,
                                 placement_group=args.placement_group or "0", add=args.add)
    try:
        use_event_loop(os.environ.get(EVENT_LOOP_ENV, "auto"))
    except VoltError as exc:
        return fail(str(exc))
    if args.background:
        rest = [a for a in argv if a not in ("--background", "-B")]
        code, msg = start_background(rest, args.dir, cluster=cluster is not None)
        print(msg, file=sys.stdout if code == 0 else sys.stderr)
        return code
    try:
        return serve(args.dir, ServerConfig(client=client, admin=admin, http=http),
                     cluster=cluster)
    except RootError as exc:
        return fail(str(exc))
    except ClusterError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    except VoltError as exc:
        return fail(f"cannot open the database in {args.dir}: {exc}")


def run_cluster(args: argparse.Namespace) -> int:
    """voltdb-py cluster up|down: a local multi-process cluster."""
    from voltdb_py.node.local import cluster_down, cluster_up
    from voltdb_py.node.root import RootError

    if args.action == "down":
        try:
            killed = cluster_down(args.dir, timeout_s=args.timeout)
        except RootError as exc:
            print(f"voltdb-py cluster down: error: {exc}", file=sys.stderr)
            return 1
        note = f" (killed {len(killed)} that did not stop in time)" if killed else ""
        print(f"The cluster in {Path(args.dir).absolute()} has shut down{note}.")
        return 0
    from rich.console import Console
    from rich.table import Table

    try:
        state = cluster_up(args.dir, args.hosts, args.kfactor, args.sitesperhost,
                           config=args.config, schema=args.schema, classes=args.classes,
                           port_base=args.port_base, force=args.force,
                           timeout_s=args.timeout)
    except RootError as exc:
        print(f"voltdb-py cluster up: error: {exc}", file=sys.stderr)
        return 1
    table = Table(title=f"voltdb_py cluster: {args.hosts} hosts, kfactor {args.kfactor}, "
                        f"{state['hosts'][0]['partitions']} partitions")
    for col in ("host id", "pid", "client", "admin", "http", "internal", "raft", "root"):
        table.add_column(col)
    for h in sorted(state["hosts"], key=lambda h: h["host_id"]):
        table.add_row(str(h["host_id"]), str(h["pid"]), str(h["client"]), str(h["admin"]),
                      str(h["http"] or "-"), str(h["internal"]), str(h["raft"]), h["dir"])
    Console().print(table)
    servers = ",".join(f"127.0.0.1:{h['client']}" for h in state["hosts"])
    print(f"Ready. Connect with: sqlcmd-py --servers {servers}")
    print(f"Stop with: voltdb-py cluster down --dir {args.dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the voltdb-py command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="voltdb-py", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voltdb-py {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the embedded voter demo")
    demo.add_argument("--votes", type=int, default=20000, help="Vote calls to make")
    demo.add_argument("--partitions", type=int, default=8, help="partitions (sites per host)")
    demo.add_argument("--dir", default=None, help="keep the database in this directory")
    demo.add_argument("--seed", type=int, default=1, help="random seed")
    demo.add_argument("--cluster-votes", type=int, default=20000,
                      help="votes cast on the local 3-host cluster part (0 skips it)")
    init = sub.add_parser("init", help="prepare a server root directory")
    init.add_argument("--dir", "-D", required=True, help="the root directory to create")
    init.add_argument("--config", "-C", default=None, help="deployment.xml (default: defaults)")
    init.add_argument("--schema", "-s", action="append", default=None,
                      help="DDL file(s) to load (repeat or comma-separate)")
    init.add_argument("--classes", "-j", action="append", default=None,
                      help="procedure modules (.py or package dir) to load before the schema")
    init.add_argument("--force", "-f", action="store_true",
                      help="replace an initialized root (deletes its data)")
    start = sub.add_parser("start", help="run a server on an initialized root")
    start.add_argument("--dir", "-D", required=True, help="the initialized root directory")
    start.add_argument("--host", "-H", default=None, help="cluster leader host[:port] list")
    start.add_argument("--count", "-c", type=int, default=None, help="number of hosts")
    start.add_argument("--add", action="store_true", help="join a running cluster (elastic)")
    start.add_argument("--client", default=None, help="client [ip:]port (21212; 0 = any)")
    start.add_argument("--admin", default=None, help="admin [ip:]port (21211; 0 = any)")
    start.add_argument("--http", default=None, help="HTTP/JSON API [ip:]port (default: the deployment's <httpd>, 8080)")
    start.add_argument("--internal", default=None,
                       help="host-to-host [ip:]port (3021; 0 = any free port)")
    start.add_argument("--zookeeper", "-z", default=None,
                       help="cluster metadata (Raft) [ip:]port (7181; 0 = any free port)")
    start.add_argument("--placement-group", default=None,
                       help="placement group (rack) of this host, e.g. row1.rack2")
    start.add_argument("--background", "-B", action="store_true",
                       help="detach and return once the server is ready")
    cluster = sub.add_parser("cluster", help="start or stop a local multi-process cluster")
    csub = cluster.add_subparsers(dest="action", required=True)
    up = csub.add_parser("up", help="initialize and start N hosts; return when formed")
    up.add_argument("--dir", "-D", required=True, help="directory for the hosts' roots")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (3)")
    up.add_argument("--kfactor", type=int, default=1, help="K-safety (1)")
    up.add_argument("--sitesperhost", type=int, default=4, help="sites per host (4)")
    up.add_argument("--config", "-C", default=None,
                    help="deployment.xml (default: one made from the options above)")
    up.add_argument("--schema", "-s", action="append", default=None, help="DDL file(s)")
    up.add_argument("--classes", "-j", action="append", default=None,
                    help="procedure modules to load before the schema")
    up.add_argument("--port-base", type=int, default=21212,
                    help="client port of host 0; host i uses +10*i (0: any free ports)")
    up.add_argument("--force", "-f", action="store_true",
                    help="re-initialize host roots that exist (deletes their data)")
    up.add_argument("--timeout", type=float, default=120.0,
                    help="seconds to wait for the cluster to form (120)")
    down = csub.add_parser("down", help="shut down the cluster started in --dir")
    down.add_argument("--dir", "-D", required=True, help="the directory given to 'up'")
    down.add_argument("--timeout", type=float, default=60.0,
                      help="seconds to wait before killing what is left (60)")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.command == "init":
        return run_init(args)
    if args.command == "start":
        return run_start(args, raw)
    if args.command == "cluster":
        return run_cluster(args)
    if args.command == "demo":
        if args.votes < 0 or args.partitions < 1:
            parser.error("--votes must be >= 0 and --partitions >= 1")
        if args.cluster_votes < 0:
            parser.error("--cluster-votes must be >= 0")
        return run_demo(args.votes, args.partitions, args.dir, args.seed, args.cluster_votes)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
