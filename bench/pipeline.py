"""Benchmark of the osism events pipeline: EventBridge.add_event -> Redis ->
`osism service api` -> WebSocket clients.

    .venv/bin/python bench/pipeline.py [--events N] [--clients M] [--rate R]
        [--stopped-client] [--compression] [--json]

Starts a private redis-server and the API (as README does), connects the
clients in one receiver process (bench/ws_client.py), publishes from another
process (bench/publisher.py), and reports what arrived, how fast and how
late, and what it cost the server. See bench/README.md for the figures.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from children import ChildLines, ServerWatch
from figures import build_result, read_latencies
from report import summary_lines
from servers import (
    ApiServer,
    api_server,
    REPO_ROOT,
    RedisServer,
    clean_env,
    code_identity,
    cpu_seconds,
    machine_idle_seconds,
    redis_server,
    running,
    sample,
    wait_until,
)

BENCH_DIR = Path(__file__).resolve().parent
CONNECT_TIMEOUT = 15.0
# As fast as possible, an eager receiver wakes up for every frame or two
# (about 12 us of CPU per wake-up here, most of it the kernel's), which on
# two cores takes a core from the server; latency in that mode is queueing
# anyway, so the receiver reads once per millisecond. With --rate it reads
# as soon as anything arrives.
FAST_RECEIVER_PAUSE_MS = 1.0


@contextlib.contextmanager
def services(
    workdir: Path, compression: bool, tree: Optional[Path]
) -> Iterator[tuple[ApiServer, RedisServer, str]]:
    """redis-server and the API; yields (API, Redis, channel)."""
    channel = f"osism:events:bench:{uuid.uuid4().hex[:12]}"
    with open(workdir / "redis.log", "wb") as redis_log, open(
        workdir / "api.log", "wb"
    ) as api_log:
        with redis_server(workdir, redis_log) as redis:
            try:
                server = api_server(redis.port, channel, compression, api_log, tree)
                with server as api:
                    yield api, redis, channel
            except Exception:
                api_log.flush()
                _show_log(workdir / "api.log")
                raise


def _show_log(path: Path) -> None:
    text = path.read_text(errors="replace").strip()
    if text:
        print(f"--- {path.name} (last lines) ---", file=sys.stderr)
        print("\n".join(text.splitlines()[-30:]), file=sys.stderr)


def receiver_argv(args: argparse.Namespace, port: int, latency_file: Path) -> List[str]:
    argv = [sys.executable, str(BENCH_DIR / "ws_client.py"), "--port", str(port)]
    argv += ["--clients", str(args.clients), "--events", str(args.events)]
    argv += ["--idle-timeout", str(args.idle_timeout)]
    argv += ["--pause-ms", str(receiver_pause_ms(args))]
    argv += ["--deadline", str(run_deadline(args) + 30)]
    argv += ["--latency-file", str(latency_file)]
    if args.stopped_client:
        argv.append("--stopped-client")
    if args.compression:
        argv.append("--compression")
    return argv


def receiver_pause_ms(args: argparse.Namespace) -> float:
    if args.receiver_pause_ms is not None:
        return float(args.receiver_pause_ms)
    return 0.0 if args.rate else FAST_RECEIVER_PAUSE_MS


def publisher_argv(args: argparse.Namespace) -> List[str]:
    argv = [sys.executable, str(BENCH_DIR / "publisher.py")]
    argv += ["--events", str(args.events)]
    if args.rate:
        argv += ["--rate", str(args.rate)]
    return argv


def run_deadline(args: argparse.Namespace) -> float:
    """Seconds publishing may take: the schedule (or 1,000 events/s, far below
    what the publisher does) with room to spare."""
    rate = args.rate or 1000.0
    return 30.0 + 1.5 * args.events / rate


def wait_for_clients(api: ApiServer, expected: int) -> None:
    """Until the server has registered every client (health 'clients')."""
    wait_until(
        lambda: api.health()["websocket"]["clients"] == expected,
        CONNECT_TIMEOUT,
        f"{expected} WebSocket clients registered",
    )


def run(args: argparse.Namespace, workdir: Path) -> Dict[str, Any]:
    latency_file = workdir / "latencies.bin"
    tree = args.osism_tree
    with services(workdir, args.compression, tree) as (api, redis, channel):
        receiver_proc = running(receiver_argv(args, api.port, latency_file), pipes=True)
        with receiver_proc as rproc:
            receiver = ChildLines(rproc, "receiver")
            receiver.read(CONNECT_TIMEOUT, "clients connected")
            wait_for_clients(api, args.clients + (1 if args.stopped_client else 0))
            env = clean_env(
                tree,
                REDIS_HOST="127.0.0.1",
                REDIS_PORT=str(redis.port),
                REDIS_CHANNEL=channel,
            )
            with running(publisher_argv(args), env=env, pipes=True) as pproc:
                publisher = ChildLines(pproc, "publisher")
                publisher.read(CONNECT_TIMEOUT, "publisher connected")
                others = {"redis-server": redis.pid, "receiver": rproc.pid}
                others["publisher"] = pproc.pid
                measured = measure(api, args, publisher, receiver, others)
            measured["health"] = api.health()
    measured["latencies"], measured["sent"] = read_latencies(str(latency_file))
    return measured


def measure(
    api: ApiServer,
    args: argparse.Namespace,
    publisher: ChildLines,
    receiver: ChildLines,
    others: Dict[str, int],
) -> Dict[str, Any]:
    """Publish, wait for the receiver's verdict, and sample the server
    around it: CPU and RSS just before the go and after the last frame.

    The CPU of the benchmark's other processes and of the whole machine is
    sampled over the same window: what is left is other work on the
    machine, which makes the figures of that run noisier.
    """
    pid = api.proc.pid
    watch = ServerWatch(pid, api.port, watch_drops=args.stopped_client)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    before = sample(pid)
    others_before = {name: cpu_seconds(p) for name, p in others.items()}
    idle_before = machine_idle_seconds()
    before_ns = time.monotonic_ns()
    watch.start()
    try:
        publisher.send("go")
        published = publisher.read(run_deadline(args), "publishing done")
        receiver.send("published")
        received = receiver.read(
            run_deadline(args) + args.idle_timeout + 30, "receiver result"
        )
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


def machine_figures(
    window_s: float, idle_s: float, cpu: Dict[str, float], loadavg: List[str]
) -> Dict[str, Any]:
    """What the machine did over the window: busy CPU seconds (all cores,
    from idle time), ours per process, and the rest, which is other work
    (other developers' tests) plus interrupt time charged to no process."""
    cpus = os.cpu_count() or 1
    busy_s = cpus * window_s - idle_s
    return {
        "cpus": cpus,
        "loadavg_before": loadavg,
        "busy_cpu_s": busy_s,
        "benchmark_cpu_s": cpu,
        "other_cpu_s": busy_s - sum(cpu.values()),
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="events to publish")
    parser.add_argument("--clients", type=int, default=10, help="WebSocket clients")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="events/s (default: as fast as possible)",
    )
    parser.add_argument(
        "--stopped-client",
        action="store_true",
        help="add a client that completes the handshake and never reads",
    )
    parser.add_argument(
        "--compression",
        action="store_true",
        help="WEBSOCKET_PER_MESSAGE_DEFLATE=true, clients negotiate permessage-deflate",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="after publishing, stop once no frame came for this long (s)",
    )
    parser.add_argument(
        "--receiver-pause-ms",
        type=float,
        default=None,
        help="pause between the receiver's reads (default: "
        f"{FAST_RECEIVER_PAUSE_MS:g} ms as fast as possible, 0 with --rate)",
    )
    parser.add_argument(
        "--osism-tree",
        type=lambda text: Path(text).resolve(),
        default=REPO_ROOT,
        help="run the server and publisher on the osism/ package in this "
        "directory (default: this work tree, not the copy `pip install .` "
        "put in the venv)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if (
        args.events < 1
        or args.clients < 1
        or (args.rate is not None and args.rate <= 0)
    ):
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
        print(
            "interrupted; every process the benchmark started is stopped",
            file=sys.stderr,
        )
        return 130
    config = {
        "events": args.events,
        "clients": args.clients,
        "rate": args.rate,
        "stopped_client": args.stopped_client,
        "compression": args.compression,
        "receiver_pause_ms": receiver_pause_ms(args),
        "code": code_identity(args.osism_tree),
    }
    result = build_result(config, measured)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(summary_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
