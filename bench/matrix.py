"""Run the configurations of bench/README.md's table several times each and
print the medians (with the range over the runs) as Markdown.

    .venv/bin/python bench/matrix.py [--runs 3] [--only NAME ...] [--save DIR]
        [any bench/pipeline.py option, e.g. --osism-tree DIR]

Each run is a separate `bench/pipeline.py --json` process (its own
redis-server and API), one after the other.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from servers import machine_idle_seconds

BENCH_DIR = Path(__file__).resolve().parent

CONFIGURATIONS: Dict[str, List[str]] = {
    "fast": [],
    "rate-1000": ["--rate", "1000"],
    "rate-5000": ["--rate", "5000"],
    "rate-1000-stopped": ["--rate", "1000", "--stopped-client"],
    "fast-deflate": ["--compression"],
    "rate-1000-deflate": ["--rate", "1000", "--compression"],
}

Figure = Callable[[Dict[str, Any]], Optional[float]]


def _stopped(key: str) -> Figure:
    return lambda r: (r["stopped_client"] or {}).get(key)


def _held_p99_ratio(r: Dict[str, Any]) -> Optional[float]:
    phases = (r["stopped_client"] or {}).get("others_latency_by_phase") or {}
    before, held = phases.get("before_stall"), phases.get("stalled")
    if not before or not held:
        return None
    ratio: float = held["p99_ms"] / before["p99_ms"]
    return ratio


FIGURES: Dict[str, Figure] = {
    "events/s per client (slowest)": lambda r: min(
        c["events_per_s"] for c in r["clients"]
    ),
    "lost (all clients)": lambda r: sum(c["lost"] for c in r["clients"]),
    "p50 ms": lambda r: r["latency"]["p50_ms"],
    "p95 ms": lambda r: r["latency"]["p95_ms"],
    "p99 ms": lambda r: r["latency"]["p99_ms"],
    "max ms": lambda r: r["latency"]["max_ms"],
    "server CPU s": lambda r: r["server"]["cpu_s"],
    "server CPU us/frame": lambda r: r["server"]["cpu_us_per_frame"],
    "server RSS before MiB": lambda r: r["server"]["rss_before_mib"],
    "server RSS after MiB": lambda r: r["server"]["rss_after_mib"],
    "server RSS max MiB": lambda r: r["server"]["rss_max_mib"],
    "publisher events/s": lambda r: r["publisher"]["events_per_s"],
    "receiver CPU s": lambda r: r["receiver"]["cpu_s"],
    "machine busy CPU s": lambda r: r["machine"]["busy_cpu_s"],
    "of which not the benchmark's CPU s": lambda r: r["machine"]["other_cpu_s"],
    "busy cores just before the run": lambda r: r["machine"].get(
        "busy_cores_before_run"
    ),
    "stopped: dropped after s": _stopped("dropped_after_s"),
    "stopped: drop after stall s": _stopped("drop_after_stall_s"),
    "stopped: others' p99 held/before": _held_p99_ratio,
}


def busy_cores(seconds: float = 1.0) -> float:
    """Cores the machine kept busy over the next ``seconds``."""
    before = machine_idle_seconds()
    start = time.monotonic()
    time.sleep(seconds)
    idle = machine_idle_seconds() - before
    return (os.cpu_count() or 1) - idle / (time.monotonic() - start)


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Until other work on the machine uses at most ``threshold`` cores (so
    runs are less noisy), or ``max_wait`` seconds; the last measurement."""
    deadline = time.monotonic() + max_wait
    while True:
        cores = busy_cores()
        if cores <= threshold or time.monotonic() >= deadline:
            return cores


def run_once(extra: List[str]) -> Dict[str, Any]:
    argv = [sys.executable, str(BENCH_DIR / "pipeline.py"), "--json", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{done.stderr[-3000:]}")
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def cell(values: List[Optional[float]]) -> str:
    """Median, and the range when the runs differ."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    median = statistics.median(known)
    low, high = min(known), max(known)
    digits = 0 if abs(median) >= 100 else 2
    text = f"{median:,.{digits}f}"
    if high != low:
        text += f" ({low:,.{digits}f}-{high:,.{digits}f})"
    if len(known) < len(values):
        text += f" [{len(values) - len(known)} runs: none]"
    return text


def table(results: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    names = list(results)
    lines = ["| figure | " + " | ".join(names) + " |"]
    lines.append("| --- |" + " --- |" * len(names))
    for figure, get in FIGURES.items():
        cells = [cell([get(r) for r in results[name]]) for name in names]
        if any(c != "-" for c in cells):
            lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(CONFIGURATIONS))
    parser.add_argument("--save", type=Path, help="keep each run's JSON here")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for other "
        "processes to use at most --quiet-cores cores",
    )
    parser.add_argument("--quiet-cores", type=float, default=0.2)
    args, extra = parser.parse_known_args()
    results: Dict[str, List[Dict[str, Any]]] = {}
    for name in args.only or list(CONFIGURATIONS):
        results[name] = []
        for n in range(args.runs):
            print(f"{name} run {n + 1}/{args.runs}", file=sys.stderr, flush=True)
            busy = wait_for_quiet(args.quiet_wait, args.quiet_cores)
            result = run_once(CONFIGURATIONS[name] + extra)
            result["machine"]["busy_cores_before_run"] = busy
            results[name].append(result)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{name}-{n + 1}.json").write_text(json.dumps(result))
    codes = {json.dumps(r["config"]["code"]) for rs in results.values() for r in rs}
    print("osism code measured: " + "; ".join(sorted(codes)) + "\n")
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
