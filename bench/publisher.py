"""The publishing side of the benchmark: osism's own EventBridge.add_event.

Run by bench/pipeline.py, not by hand, with REDIS_HOST, REDIS_PORT and
REDIS_CHANNEL set. It connects, prints ``{"ready": true}``, waits for a
``go`` line on standard input, publishes ``--events`` events (as fast as it
can, or ``--rate`` per second paced by absolute deadlines) and prints the
result as one JSON line.

Each payload carries ``bench_seq`` (0..N-1) and ``bench_sent_ns``
(time.monotonic_ns() just before add_event; CLOCK_MONOTONIC is one clock
for all processes on Linux, so the receiver can subtract it).
"""

import argparse
import json
import logging
import resource
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

from osism.services.event_bridge import EventBridge

EVENT_TYPE = "baremetal.node.power_set.end"
NODES = 100


def node_objects(count: int) -> List[Dict[str, str]]:
    """The ``ironic_object.data`` of ``count`` nodes, made once up front."""
    return [{"name": f"node-{k}", "uuid": str(uuid.uuid4())} for k in range(count)]


def publish(bridge: EventBridge, events: int, rate: Optional[float]) -> Dict[str, Any]:
    """Publish ``events`` events; with ``rate``, event i is due at
    start + i / rate, so a late event does not push the later ones back."""
    nodes = node_objects(NODES)
    interval_ns = int(1e9 / rate) if rate else 0
    max_behind_ns = 0
    start_ns = time.monotonic_ns()
    for seq in range(events):
        if interval_ns:
            due_ns = start_ns + seq * interval_ns
            now_ns = time.monotonic_ns()
            if now_ns < due_ns:
                time.sleep((due_ns - now_ns) / 1e9)
            else:
                max_behind_ns = max(max_behind_ns, now_ns - due_ns)
        payload = {
            "ironic_object.data": nodes[seq % NODES],
            "bench_seq": seq,
            "bench_sent_ns": time.monotonic_ns(),
        }
        bridge.add_event(EVENT_TYPE, payload)
    end_ns = time.monotonic_ns()
    return {
        "first_ns": start_ns,
        "last_ns": end_ns,
        "max_behind_schedule_ms": max_behind_ns / 1e6,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_for_go() -> None:
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected 'go', got {line!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args()
    # add_event logs every publish at INFO; WARNING keeps that off the clock.
    logging.basicConfig(level=logging.WARNING)
    bridge = EventBridge()
    if not bridge.health()["redis_connected"]:
        raise SystemExit("the publisher's event bridge did not reach Redis")
    print(json.dumps({"ready": True}), flush=True)
    wait_for_go()
    cpu_before = cpu_seconds()
    try:
        result = publish(bridge, args.events, args.rate)
    finally:
        bridge.shutdown()
    result["cpu_s"] = cpu_seconds() - cpu_before
    result["counters"] = dict(bridge.stats)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
