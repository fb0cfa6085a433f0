"""Figures of one benchmark run, computed from what the processes reported
(bench/README.md, "The figures", defines each), and the project's targets
that apply to the run."""

import math
from array import array
from typing import Any, Dict, List, Optional, Sequence, Tuple

from measure import ServerWatch
from tests.harness.proc_stats import ProcSample

SEND_TIMEOUT_S = 5.0  # WEBSOCKET_SEND_TIMEOUT's default, which the run keeps
# With a stopped client, the others' p99 while the server held it may be at
# most this many times their p99 before (the project's target).
STOPPED_P99_FACTOR = 1.5

PERCENTILES = (50, 95, 99)
# Paced 1,000 events/s to 10 clients: server CPU per frame at most this share
# of upstream's, measured in the same matrix (bench/matrix.py --compare-tree).
UPSTREAM_CPU_SHARE = 1 / 3


def is_paced_1000(config: Dict[str, Any]) -> bool:
    plain = not config["compression"] and not config["stopped_client"]
    return bool(plain and config["rate"] == 1000 and config["clients"] == 10)


def percentile(sorted_values: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(values: Sequence[int]) -> Optional[Dict[str, float]]:
    """p50/p95/p99/max in milliseconds, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    summary = {f"p{p}_ms": percentile(ordered, p) / 1e6 for p in PERCENTILES}
    summary["max_ms"] = ordered[-1] / 1e6
    return summary


def phase_latencies(
    latencies: "array[int]", sent: "array[int]", bounds: Dict[str, Tuple[int, int]]
) -> Dict[str, Optional[Dict[str, float]]]:
    """Latency summary of the events sent in each [start, end) period."""
    phases: Dict[str, List[int]] = {name: [] for name in bounds}
    for latency, sent_ns in zip(latencies, sent):
        for name, (start, end) in bounds.items():
            if start <= sent_ns < end:
                phases[name].append(latency)
    return {name: latency_summary(values) for name, values in phases.items()}


def client_figures(
    clients: List[Dict[str, Any]],
    latencies: "array[int]",
    events: int,
    first_publish_ns: int,
) -> List[Dict[str, Any]]:
    """Per client: received, lost, duplicates, out of order, events/s and p99.

    events/s = events received / (that client's last receive time - the
    publisher's first publish time): the rate the whole pipeline delivered
    to that client, publishing included.
    """
    figures = []
    for client in clients:
        start = client["latency_offset"]
        own = latencies[start : start + client["received"]]
        seconds = (client["last_ns"] - first_publish_ns) / 1e9
        own_latency = latency_summary(own)
        figures.append(
            {
                "received": client["received"],
                "lost": events - client["received"],
                "duplicates": client["duplicates"],
                "out_of_order": client["out_of_order"],
                "events_per_s": client["received"] / seconds if seconds > 0 else 0.0,
                "p99_ms": own_latency["p99_ms"] if own_latency else None,
                "close_code": client["close_code"],
            }
        )
    return figures


def build_result(config: Dict[str, Any], m: Dict[str, Any]) -> Dict[str, Any]:
    """The --json document of a run: ``config`` and the measurements ``m``
    (what the children reported, /proc samples, health, latencies)."""
    published, received = m["published"], m["received"]
    first_ns = published["first_ns"]
    events = config["events"]
    clients = client_figures(received["clients"], m["latencies"], events, first_ns)
    delivered = sum(c["received"] for c in clients)
    result: Dict[str, Any] = {
        "config": config,
        "clients": clients,
        "latency": latency_summary(m["latencies"]),
        "publisher": _publisher_figures(published, events),
        "receiver": {
            k: received[k]
            for k in ("cpu_s", "cpu_sys_s", "ended_by", "wakeups", "recvs")
        },
        "server": _server_figures(
            m, delivered, config["clients"] + config["stopped_client"]
        ),
        "health": m["health"],
        "machine": m["machine"],
        "stopped_client": _stopped_figures(received, m["watched"], first_ns),
        "compressed_messages": sum(c["compressed"] for c in received["clients"]),
    }
    stopped = result["stopped_client"]
    if stopped is not None:
        bounds = _phases(stopped, first_ns)
        phases = phase_latencies(m["latencies"], m["sent"], bounds)
        before, held = phases["before_stall"], phases["stalled"]
        stopped["others_latency_by_phase"] = phases
        ratio = held["p99_ms"] / before["p99_ms"] if before and held else None
        stopped["held_p99_ratio"] = ratio
    result["targets"] = targets(result)
    return result


def _publisher_figures(published: Dict[str, Any], events: int) -> Dict[str, Any]:
    seconds = (published["last_ns"] - published["first_ns"]) / 1e9
    return {
        "seconds": seconds,
        "events_per_s": events / seconds if seconds > 0 else 0.0,
        "cpu_s": published["cpu_s"],
        "max_behind_schedule_ms": published["max_behind_schedule_ms"],
        "counters": published["counters"],
    }


def _server_figures(m: Dict[str, Any], delivered: int, n: int) -> Dict[str, Any]:
    """CPU (seconds, per delivered frame, share of a core over the window),
    RSS, and RSS per idle client: (all connected - before they connected),
    before the first event, over the n clients."""
    before: ProcSample = m["before"]
    after: ProcSample = m["after"]
    watched: ServerWatch = m["watched"]
    cpu_s = after.cpu_s - before.cpu_s
    return {
        "cpu_s": cpu_s,
        "window_s": m["window_s"],
        "delivered_frames": delivered,
        "cpu_us_per_frame": cpu_s * 1e6 / delivered if delivered else None,
        "cores": cpu_s / m["window_s"],
        "kib_per_idle_client": (m["idle"][1].rss_kib - m["idle"][0].rss_kib) / n,
        "rss_before_mib": before.rss_kib / 1024,
        "rss_after_mib": after.rss_kib / 1024,
        "rss_max_mib": max(watched.max_rss_kib, after.rss_kib) / 1024,
        "hwm_mib": after.hwm_kib / 1024,
        "health_polls": watched.health_polls,
    }


def _seconds(later_ns: Optional[int], earlier_ns: Optional[int]) -> Optional[float]:
    if later_ns is None or earlier_ns is None:
        return None
    return (later_ns - earlier_ns) / 1e9


def _stopped_figures(
    received: Dict[str, Any], watched: ServerWatch, first_ns: int
) -> Optional[Dict[str, Any]]:
    """When the server dropped the stopped client, and how long after its
    socket stopped taking frames (the publish time of the last frame it got:
    the next send is the one that blocked)."""
    stopped = received["stopped_client"]
    if stopped is None:
        return None
    dropped_ns = watched.dropped_at_ns
    stalled_ns = stopped["last_sent_ns"] or None
    return dict(
        stopped,
        dropped_ns=dropped_ns,
        dropped_after_s=_seconds(dropped_ns, first_ns),
        stalled_after_s=_seconds(stalled_ns, first_ns),
        drop_after_stall_s=_seconds(dropped_ns, stalled_ns),
    )


def _phases(stopped: Dict[str, Any], first_ns: int) -> Dict[str, Tuple[int, int]]:
    """Send-time periods of a stopped-client run: before its socket stalled,
    while the server still held it, and after the server dropped it."""
    end = 2**63 - 1
    stalled = stopped["last_sent_ns"] or end
    dropped = stopped["dropped_ns"] or end
    return {
        "before_stall": (first_ns, stalled),
        "stalled": (stalled, dropped),
        "after_drop": (dropped, end),
    }


def targets(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The project's targets that apply to this configuration, met or not:
    each a bound the value must not exceed (with ``least``, not fall below)."""
    config, server, stopped = result["config"], result["server"], None
    found = []

    def check(what: str, value: Any, bound: float, least: bool = False) -> None:
        met = value is not None and (value >= bound if least else value <= bound)
        found.append({"what": what, "value": value, "met": met})

    lost = sum(c["lost"] for c in result["clients"])
    slowest = min(c["events_per_s"] for c in result["clients"])
    p99 = (result["latency"] or {}).get("p99_ms")
    us, rate, many = server["cpu_us_per_frame"], config["rate"], config["clients"]
    if not rate and not config["stopped_client"]:
        check("0 lost", lost, 0)
        check(">= 10,000 events/s per client (slowest)", slowest, 10_000, True)
        check("<= 6 us server CPU per frame", us, 6)
    if rate and rate <= 5000 and not config["compression"]:
        bound = 100.0 if many >= 1000 else 1.0 if rate <= 1000 else 5.0
        check(f"p99 <= {bound:g} ms", p99, bound)
    if is_paced_1000(config):
        check("<= 10 us server CPU per frame", us, 10)
    if many >= 1000 and rate == 100:
        check("every event delivered (lost)", lost, 0)
        check("server <= 1 core", server["cores"], 1)
        kib = server["kib_per_idle_client"]
        check("<= 16 kB RSS per idle client (KiB)", kib, 16 / 1.024)
    stopped = result["stopped_client"]
    if stopped is not None:
        check("others lose nothing", lost, 0)
        growth = server["rss_max_mib"] - server["rss_before_mib"]
        check("server RSS grows <= 20 MB (max sampled - before, MiB)", growth, 20)
        if stopped["held_p99_ratio"] is not None:
            what = "others' p99 while the server held the stopped client <= "
            what += f"{STOPPED_P99_FACTOR:g} x their p99 before it stalled"
            check(what, stopped["held_p99_ratio"], STOPPED_P99_FACTOR)
        what = f"stopped client dropped within the send bound ({SEND_TIMEOUT_S:g}"
        what += " s + 0.1 s health polling) after its socket stalled"
        check(what, stopped["drop_after_stall_s"], SEND_TIMEOUT_S + 0.1)
    return found
