"""Numbered events: published in a burst (as fast as possible, or paced),
and counted per client as they arrive: received, lost, duplicates, out of
order, and the latency of each.

Each payload carries ``bench_seq`` (0..N-1) and ``bench_sent_ns``
(time.monotonic_ns() just before add_event; CLOCK_MONOTONIC is one clock for
all processes on Linux, so a receiver in another process can subtract it).
A receiver does not JSON-decode the frames: the server writes them with
json.dumps defaults and the payload's keys in the order published, so one
regular expression finds both numbers.
"""

import re
import time
import uuid
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

EVENT_TYPE = "baremetal.node.power_set.end"
NODES = 100
# A frame as the websockets library hands it over.
BytesLike = Union[bytes, bytearray, memoryview]
_SEQ_AND_TIME = re.compile(rb'"bench_seq": (\d+), "bench_sent_ns": (\d+)')


def publish_numbered(
    add_event: Callable[[str, Dict[str, Any]], Any],
    events: int,
    rate: Optional[float] = None,
) -> Dict[str, Any]:
    """Hand ``events`` numbered Ironic events to ``add_event``; with
    ``rate``, event i is due at start + i / rate (absolute deadlines, so a
    late event does not push the later ones back)."""
    nodes = [{"name": f"node-{k}", "uuid": str(uuid.uuid4())} for k in range(NODES)]
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
        add_event(EVENT_TYPE, payload)
    return {
        "first_ns": start_ns,
        "last_ns": time.monotonic_ns(),
        "max_behind_schedule_ms": max_behind_ns / 1e6,
    }


@dataclass
class ReceiveStats:
    """What one client received; ``seen`` marks each sequence number once.

    Counting is the receiver's per-frame work, so it does as little as it
    can: what can be derived (how many arrived, the last send time) is, and
    receive times are kept per chunk by the caller (``first_ns``,
    ``last_ns``).
    """

    events: int
    seen: bytearray = field(init=False)
    duplicates: int = 0
    out_of_order: int = 0
    foreign: int = 0  # text frames that were not numbered events
    first_ns: int = 0
    last_ns: int = 0
    last_seq: int = -1
    latencies: "array[int]" = field(default_factory=lambda: array("q"))
    sent: "array[int]" = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        self.seen = bytearray(self.events)

    @property
    def received(self) -> int:
        """Distinct numbered events received."""
        return len(self.latencies)

    @property
    def last_sent_ns(self) -> int:
        """bench_sent_ns of the last event received (0 before the first)."""
        return self.sent[-1] if self.sent else 0

    def count(self, text: BytesLike, now_ns: int) -> None:
        """Count one text frame received at ``now_ns``."""
        match = _SEQ_AND_TIME.search(text)
        if match is None:  # a heartbeat, a reply, or not an event at all
            self.foreign += 1
            return
        seq = int(match[1])
        if seq >= self.events or self.seen[seq]:
            self.duplicates += 1
            return
        self.seen[seq] = 1
        if seq < self.last_seq:
            self.out_of_order += 1
        self.last_seq = seq
        sent_ns = int(match[2])
        self.latencies.append(now_ns - sent_ns)
        self.sent.append(sent_ns)

    def arrived(self, received_before: int, now_ns: int) -> None:
        """Note the receive time of a chunk if it brought new events (the
        count was ``received_before`` before it)."""
        if self.received > received_before:
            self.last_ns = now_ns
            self.first_ns = self.first_ns or now_ns
