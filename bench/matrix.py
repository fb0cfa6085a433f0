"""Run the configurations of bench/README.md's table several times each and
print the medians (with the range over the runs) as Markdown.

    .venv/bin/python bench/matrix.py [--runs 3] [--max-runs 6] [--only NAME ...]
        [--save DIR] [--quiet-wait S] [any bench/pipeline.py option, e.g.
        --osism-tree DIR]

Each run is a separate `bench/pipeline.py --json` process (its own
redis-server and API), one after the other. Other developers' tests share
the two cores; a run during which they took more than --quiet-share of the
machine's CPU is repeated (up to --max-runs), and the medians are of the
quiet runs.
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


def is_quiet(result: Dict[str, Any], share: float) -> bool:
    """True when work that is not the benchmark's took at most ``share`` of
    the machine's CPU over the run's window."""
    machine = result["machine"]
    capacity = machine["cpus"] * result["server"]["window_s"]
    return bool(machine["other_cpu_s"] <= share * capacity)


def table(results: Dict[str, List[Dict[str, Any]]], share: float) -> List[str]:
    """Medians over each configuration's quiet runs (over all runs where
    none was quiet, which the first row says)."""
    names = list(results)
    chosen = {}
    lines = ["| figure | " + " | ".join(names) + " |"]
    lines.append("| --- |" + " --- |" * len(names))
    counts = []
    for name in names:
        quiet = [r for r in results[name] if is_quiet(r, share)]
        chosen[name] = quiet or results[name]
        counts.append(f"{len(quiet)} of {len(results[name])}")
    lines.append(
        "| quiet runs (the medians are of these) | " + " | ".join(counts) + " |"
    )
    for figure, get in FIGURES.items():
        cells = [cell([get(r) for r in chosen[name]]) for name in names]
        if any(c != "-" for c in cells):
            lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


def run_configuration(
    name: str, args: argparse.Namespace, extra: List[str]
) -> List[Dict[str, Any]]:
    """Runs of one configuration until ``args.runs`` of them were quiet, at
    most ``args.max_runs``."""
    results: List[Dict[str, Any]] = []
    quiet = 0
    while quiet < args.runs and len(results) < args.max_runs:
        n = len(results) + 1
        print(f"{name} run {n} ({quiet} quiet so far)", file=sys.stderr, flush=True)
        busy = wait_for_quiet(args.quiet_wait, args.quiet_cores)
        result = run_once(CONFIGURATIONS[name] + extra)
        result["machine"]["busy_cores_before_run"] = busy
        quiet += is_quiet(result, args.quiet_share)
        results.append(result)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{name}-{n}.json").write_text(json.dumps(result))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="quiet runs wanted")
    parser.add_argument("--max-runs", type=int, default=6)
    parser.add_argument(
        "--quiet-share",
        type=float,
        default=0.05,
        help="a run is quiet when other work took at most this share of the "
        "machine's CPU during it",
    )
    parser.add_argument("--only", nargs="*", choices=list(CONFIGURATIONS))
    parser.add_argument("--save", type=Path, help="keep each run's JSON here")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for the machine "
        "to use at most --quiet-cores cores",
    )
    parser.add_argument("--quiet-cores", type=float, default=0.2)
    args, extra = parser.parse_known_args()
    results = {
        name: run_configuration(name, args, extra)
        for name in args.only or list(CONFIGURATIONS)
    }
    codes = {json.dumps(r["config"]["code"]) for rs in results.values() for r in rs}
    print("osism code measured: " + "; ".join(sorted(codes)) + "\n")
    print("\n".join(table(results, args.quiet_share)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
