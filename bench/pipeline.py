"""One run of the osism events pipeline benchmark: EventBridge.add_event ->
Redis -> `osism service api` -> WebSocket clients, each process started by
the shared test harness (tests/harness). What arrived, how fast and how
late, and what it cost the server: bench/README.md; options: --help.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from figures import build_result
from measure import ServerWatch, check_is_server  # first: tests.harness on the path
from measure import code_identity, machine_figures
from report import summary_lines
from tests.harness import HarnessError, processes, redis_server
from tests.harness.api_server import ApiServer, ApiServers
from tests.harness.proc_stats import cpu_seconds, machine_idle_seconds, sample
from tests.harness.publisher import PublisherProcess, publisher_env
from tests.harness.receiver import ReceiverProcess
from tests.harness.waiting import wait_for

CONFIG = "events clients rate stopped_client compression receiver_pause_ms".split()
CONNECT_TIMEOUT = 15.0
API_START_TIMEOUT = 20.0


@contextlib.contextmanager
def services(
    workdir: Path, args: argparse.Namespace
) -> Iterator[Tuple[ApiServer, redis_server.RedisServer]]:
    """redis-server and `osism service api` on it as README starts it: every
    other setting at its default, osism's own log at warning."""
    binary = redis_server.redis_binary()
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    redis = redis_server.start_redis(binary, workdir)
    servers = ApiServers(workdir, lambda: redis, args.osism_tree)
    env = {"LOG_LEVEL": "warning"}
    if args.compression:
        env["WEBSOCKET_PER_MESSAGE_DEFLATE"] = "true"
    try:
        api = servers(
            channel=redis_server.unique_channel("osism:events:bench"),
            heartbeat_interval=30.0,  # the default
            env=env,
            start_deadline=API_START_TIMEOUT,
        )
        assert api.process is not None
        check_is_server(api.process.pid)
        yield api, redis
    finally:
        servers.stop_all()
        redis.stop()


def run_deadline(args: argparse.Namespace) -> float:
    """Seconds publishing may take: the schedule (or 1,000 events/s, far below
    what the publisher does) with room to spare."""
    return 30.0 + 1.5 * args.events / (args.rate or 1000.0)


def run(args: argparse.Namespace, workdir: Path) -> Dict[str, Any]:
    with contextlib.ExitStack() as stack:
        api, redis = stack.enter_context(services(workdir, args))
        assert api.process is not None
        idle = [sample(api.process.pid)]  # before the clients connect
        clients = ReceiverProcess(
            api.port,
            args.events,
            args.clients,
            workdir,
            CONNECT_TIMEOUT,
            idle_timeout=args.idle_timeout,
            pause_ms=args.receiver_pause_ms,
            deadline=run_deadline(args) + 30,
            stopped_client=args.stopped_client,
            compression=args.compression,
        )
        stack.callback(clients.close)
        expected = args.clients + args.stopped_client
        wait_for(
            lambda: api.health()["websocket"]["clients"] == expected,
            CONNECT_TIMEOUT,
            f"{expected} WebSocket clients registered",
        )
        idle.append(sample(api.process.pid))  # all connected, no event yet
        # The publisher's own log at warning: add_event logs every publish at
        # info otherwise.
        env = processes.clean_env(LOG_LEVEL="warning")
        env = processes.with_osism_tree(env, args.osism_tree)
        env = publisher_env(env, redis, api.channel)
        pub = PublisherProcess(env, workdir / "publisher.log")
        stack.callback(pub.close)
        if not pub.health()["redis_connected"]:
            raise HarnessError("the publisher's event bridge did not reach Redis")
        others = {
            "redis-server": redis.process.pid,
            "receiver": clients.process.pid,
            "publisher": pub.process.pid,
        }
        measured = measure(api, args, pub, clients, others)
        measured["health"], measured["idle"] = api.health(), idle
        measured["latencies"], measured["sent"] = clients.latencies()
    return measured


def measure(
    api: ApiServer,
    args: argparse.Namespace,
    pub: PublisherProcess,
    clients: ReceiverProcess,
    others: Dict[str, int],
) -> Dict[str, Any]:
    """Publish, wait for the receiver's verdict, and sample the server (CPU,
    RSS) just before the burst and after the last frame; the benchmark's
    other processes and the machine's CPU over the same window (the rest is
    other work on the machine, which makes the run's figures noisier)."""
    assert api.process is not None
    pid = api.process.pid
    watch = ServerWatch(pid, api.try_health, watch_drops=args.stopped_client)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    before = sample(pid)
    others_before = {name: cpu_seconds(p) for name, p in others.items()}
    idle_before = machine_idle_seconds()
    before_ns = time.monotonic_ns()
    watch.start()
    try:
        published = pub.burst(args.events, args.rate, run_deadline(args))
        clients.published()
        received = clients.result(run_deadline(args) + args.idle_timeout + 30)
    finally:
        watched = watch.stop()
    after = sample(pid)
    idle_s = machine_idle_seconds() - idle_before
    cpu = {name: cpu_seconds(p) - others_before[name] for name, p in others.items()}
    cpu["server"] = after.cpu_s - before.cpu_s
    window_s = (time.monotonic_ns() - before_ns) / 1e9
    return {
        "published": published,
        "received": received,
        "before": before,
        "after": after,
        "window_s": window_s,
        "watched": watched,
        "machine": machine_figures(window_s, idle_s, cpu, loadavg),
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--events", type=int, default=20_000, help="events to publish")
    add("--clients", type=int, default=10, help="WebSocket clients")
    add("--rate", type=float, help="events/s (default: as fast as possible)")
    add("--stopped-client", action="store_true", help="one more that never reads")
    add("--compression", action="store_true", help="permessage-deflate on")
    add("--idle-timeout", type=float, default=5.0, help="s without a frame: done")
    tree = "run the server and publisher on DIR/osism (default: this work tree)"
    add("--osism-tree", type=Path, default=processes.REPO_ROOT, help=tree)
    add("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    args.osism_tree = args.osism_tree.resolve()
    # As fast as possible, an eager receiver wakes up for every frame or two,
    # which on two cores takes a core from the server; latency is queueing
    # then anyway, so it reads once per ms. With a rate, as soon as it can.
    args.receiver_pause_ms = 0.0 if args.rate else 1.0
    if args.events < 1 or args.clients < 1 or (args.rate or 1) <= 0:
        parser.error("--events, --clients and --rate must be positive")
    if not (args.osism_tree / "osism").is_dir():
        parser.error(f"no osism/ package in {args.osism_tree}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="osism-bench-") as tmp:
            measured = run(args, Path(tmp))
    except KeyboardInterrupt:
        print("interrupted; every process the benchmark started is stopped")
        return 130
    except HarnessError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    config = {k: getattr(args, k) for k in CONFIG}
    config["code"] = code_identity(args.osism_tree)
    result = build_result(config, measured)
    print(
        json.dumps(result, indent=2) if args.json else "\n".join(summary_lines(result))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
