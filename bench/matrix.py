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
from typing import Any, Dict, List, Optional

import measure  # noqa: F401 (it puts tests.harness on the path)
from tests.harness.proc_stats import machine_idle_seconds

BENCH_DIR = Path(__file__).resolve().parent
QUIET_SHARE_HELP = (
    "a run is quiet when other work took at most this share of the machine's "
    "CPU during it"
)
QUIET_WAIT_HELP = (
    "before each run, wait up to this many seconds for the machine to use at "
    "most --quiet-cores cores"
)

CONFIGURATIONS: Dict[str, List[str]] = {
    "fast": [],
    "rate-1000": ["--rate", "1000"],
    "rate-5000": ["--rate", "5000"],
    "rate-1000-stopped": ["--rate", "1000", "--stopped-client"],
    "fast-deflate": ["--compression"],
    "rate-1000-deflate": ["--rate", "1000", "--compression"],
}


def figures(r: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """The figures of one run's --json document, by table row."""
    server, machine = r["server"], r["machine"]
    stopped = r["stopped_client"] or {}
    phases = stopped.get("others_latency_by_phase") or {}
    before, held = phases.get("before_stall"), phases.get("stalled")
    return {
        "events/s per client (slowest)": min(c["events_per_s"] for c in r["clients"]),
        "lost (all clients)": sum(c["lost"] for c in r["clients"]),
        **{f"{k[:-3]} ms": v for k, v in (r["latency"] or {}).items()},
        "server CPU s": server["cpu_s"],
        "server CPU us/frame": server["cpu_us_per_frame"],
        "server RSS before MiB": server["rss_before_mib"],
        "server RSS after MiB": server["rss_after_mib"],
        "server RSS max MiB": server["rss_max_mib"],
        "publisher events/s": r["publisher"]["events_per_s"],
        "receiver CPU s": r["receiver"]["cpu_s"],
        "machine busy CPU s": machine["busy_cpu_s"],
        "of which not the benchmark's CPU s": machine["other_cpu_s"],
        "busy cores just before the run": machine.get("busy_cores_before_run"),
        "stopped: dropped after s": stopped.get("dropped_after_s"),
        "stopped: drop after stall s": stopped.get("drop_after_stall_s"),
        "stopped: others' p99 held/before": (
            held["p99_ms"] / before["p99_ms"] if before and held else None
        ),
    }


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Until other work on the machine keeps at most ``threshold`` cores
    busy (so runs are less noisy), or ``max_wait`` seconds; the last
    measurement of busy cores (over one second)."""
    deadline = time.monotonic() + max_wait
    while True:
        idle_before, start = machine_idle_seconds(), time.monotonic()
        time.sleep(1.0)
        idle = machine_idle_seconds() - idle_before
        cores = (os.cpu_count() or 1) - idle / (time.monotonic() - start)
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
    median, low, high = statistics.median(known), min(known), max(known)
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
    chosen, counts = {}, []
    for name in names:
        quiet = [r for r in results[name] if is_quiet(r, share)]
        chosen[name] = quiet or results[name]
        counts.append(f"{len(quiet)} of {len(results[name])}")
    lines = [
        "| figure | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    lines.append(
        "| quiet runs (the medians are of these) | " + " | ".join(counts) + " |"
    )
    rows = {name: [figures(r) for r in chosen[name]] for name in names}
    for figure in rows[names[0]][0]:
        cells = [cell([f.get(figure) for f in rows[name]]) for name in names]
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
    add = parser.add_argument
    add("--runs", type=int, default=3, help="quiet runs wanted")
    add("--max-runs", type=int, default=6)
    add("--quiet-share", type=float, default=0.05, help=QUIET_SHARE_HELP)
    add("--only", nargs="*", choices=list(CONFIGURATIONS))
    add("--save", type=Path, help="keep each run's JSON here")
    add("--quiet-wait", type=float, default=0.0, help=QUIET_WAIT_HELP)
    add("--quiet-cores", type=float, default=0.2)
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
