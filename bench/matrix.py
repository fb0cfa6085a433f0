"""Run the configurations of bench/README.md's tables several times each and
print the medians (with the range over the runs) as Markdown.

    .venv/bin/python bench/matrix.py [--runs 3] [--max-runs 6] [--only NAME ...]
        [--compare-tree DIR] [--save DIR] [--quiet-wait S] [any
        bench/pipeline.py option, e.g. --osism-tree DIR]

Each run is a separate `bench/pipeline.py --json` process (its own
redis-server and API), one after the other. With --compare-tree, each
configuration runs on the osism/ package in DIR (upstream) too, the runs
alternating (ours, upstream, ours, ...), and the table shows both and their
ratio. Other developers' tests share the two cores; a run during which they
took more than --quiet-share of the machine's CPU is repeated (up to
--max-runs), and the medians are of the quiet runs.
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
from figures import UPSTREAM_CPU_SHARE, is_paced_1000
from tests.harness.proc_stats import machine_idle_seconds

BENCH_DIR = Path(__file__).resolve().parent
UPSTREAM = " upstream"
QUIET = "quiet runs (the medians are of these)"
US = "server CPU us/frame"

CONFIGURATIONS: Dict[str, List[str]] = {
    "fast": [],
    "rate-100": ["--rate", "100", "--events", "2000"],
    "rate-1000": ["--rate", "1000", "--events", "10000"],
    "rate-5000": ["--rate", "5000"],
    "clients-1000-rate-100": ["--clients", "1000", "--rate", "100", "--events", "3000"],
    "rate-1000-stopped": ["--rate", "1000", "--stopped-client"],
    "fast-deflate": ["--compression"],
    "rate-1000-deflate": ["--rate", "1000", "--compression"],
}
GROUPS = {"paced": ["rate-100", "rate-1000", "clients-1000-rate-100"]}


def figures(r: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """The figures of one run's --json document, by table row."""
    server, machine = r["server"], r["machine"]
    stopped = r["stopped_client"] or {}
    return {
        "events/s per client (slowest)": min(c["events_per_s"] for c in r["clients"]),
        "lost (all clients)": sum(c["lost"] for c in r["clients"]),
        **{f"{k[:-3]} ms": v for k, v in (r["latency"] or {}).items()},
        US: server["cpu_us_per_frame"],
        "server cores (CPU s / window s)": server["cores"],
        "server KiB per idle client": server["kib_per_idle_client"],
        "server RSS before MiB": server["rss_before_mib"],
        "server RSS max MiB": server["rss_max_mib"],
        "publisher events/s": r["publisher"]["events_per_s"],
        "receiver CPU s": r["receiver"]["cpu_s"],
        "other work during the run, cores": machine["other_cpu_s"]
        / r["server"]["window_s"],
        "busy cores just before the run": machine.get("busy_cores_before_run"),
        "targets missed": sum(not t["met"] for t in r["targets"]),
        "stopped: dropped after s": stopped.get("dropped_after_s"),
        "stopped: drop after stall s": stopped.get("drop_after_stall_s"),
        "stopped: others' p99 held/before": stopped.get("held_p99_ratio"),
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


def run_once(argv: List[str]) -> Dict[str, Any]:
    argv = [sys.executable, str(BENCH_DIR / "pipeline.py"), "--json", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{done.stderr[-3000:]}")
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def median(values: List[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ratio(ours: List[Any], upstream: List[Any]) -> Optional[float]:
    """Of the medians, where both sides have values."""
    a, b = median(ours), median(upstream)
    return a / b if a is not None and b else None


def cell(values: List[Optional[float]]) -> str:
    """Median, and the range when the runs differ."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    middle, low, high = statistics.median(known), min(known), max(known)
    digits = 0 if abs(middle) >= 100 else 2
    text = f"{middle:,.{digits}f}"
    if high != low:
        text += f" ({low:,.{digits}f}-{high:,.{digits}f})"
    if len(known) < len(values):
        text += f" [{len(values) - len(known)} runs: none]"
    return text


def is_quiet(r: Dict[str, Any], share: float) -> bool:
    """Other work took at most ``share`` of the machine's CPU over the run."""
    cpus, window_s = r["machine"]["cpus"], r["server"]["window_s"]
    return bool(r["machine"]["other_cpu_s"] <= share * cpus * window_s)


def rows(results: List[Dict[str, Any]], share: float) -> Dict[str, List[Any]]:
    """Each figure's values over the quiet runs (over all runs where none was
    quiet, which the first row says)."""
    quiet = [r for r in results if is_quiet(r, share)]
    found = [figures(r) for r in quiet or results]
    by_figure = {name: [f[name] for f in found] for name in found[0]}
    return {QUIET: [f"{len(quiet)} of {len(results)}"], **by_figure}


def table(columns: Dict[str, Dict[str, List[Any]]]) -> List[str]:
    """Markdown: a column per configuration (and tree), after each upstream
    column the ratio ours/upstream of the medians."""
    cells: Dict[str, Dict[str, str]] = {}
    for name, figs in columns.items():
        cells[name] = {f: cell(v) if f != QUIET else v[0] for f, v in figs.items()}
        if name.endswith(UPSTREAM):
            ours = name[: -len(UPSTREAM)]
            cells[ours + " ours/upstream"] = {
                f: cell([ratio(columns[ours][f], v)])
                for f, v in figs.items()
                if f != QUIET
            }
    lines = ["| figure | " + " | ".join(cells) + " |", "|---" * len(cells) + "|---|"]
    for figure in next(iter(columns.values())):
        texts = [c.get(figure, "-") for c in cells.values()]
        if any(t != "-" for t in texts):
            lines.append(f"| {figure} | " + " | ".join(texts) + " |")
    return lines


def run_configuration(
    name: str, args: argparse.Namespace, extra: List[str]
) -> Dict[str, List[Dict[str, Any]]]:
    """Runs of one configuration, on our tree and (--compare-tree) upstream's
    in turn, until each has ``args.runs`` quiet ones, at most
    ``args.max_runs`` each."""
    argvs = {name: CONFIGURATIONS[name] + extra}
    if args.compare_tree:
        argvs[name + UPSTREAM] = argvs[name] + ["--osism-tree", args.compare_tree]
    results: Dict[str, List[Dict[str, Any]]] = {label: [] for label in argvs}

    def wanted(label: str) -> bool:
        done = results[label]
        quiet = sum(is_quiet(r, args.quiet_share) for r in done)
        return quiet < args.runs and len(done) < args.max_runs

    while any(wanted(label) for label in argvs):
        for label in filter(wanted, list(argvs)):
            n = len(results[label]) + 1
            print(f"{label} run {n}", file=sys.stderr, flush=True)
            busy = wait_for_quiet(args.quiet_wait, args.quiet_cores)
            result = run_once(argvs[label])
            result["machine"]["busy_cores_before_run"] = busy
            results[label].append(result)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                path = args.save / f"{label.replace(' ', '-')}-{n}.json"
                path.write_text(json.dumps(result))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add("--runs", type=int, default=3, help="quiet runs wanted")
    add("--max-runs", type=int, default=6)
    add("--quiet-share", type=float, default=0.05, help="of the machine's CPU")
    add("--only", nargs="*", choices=list(CONFIGURATIONS) + list(GROUPS))
    add("--compare-tree", help="osism/ of upstream: run each configuration on it")
    add("--save", type=Path, help="keep each run's JSON here")
    add("--quiet-wait", type=float, default=0.0, help="s to wait for --quiet-cores")
    add("--quiet-cores", type=float, default=0.2)
    args, extra = parser.parse_known_args()
    names = [n for o in args.only or CONFIGURATIONS for n in GROUPS.get(o, [o])]
    results: Dict[str, List[Dict[str, Any]]] = {}
    for name in names:
        results.update(run_configuration(name, args, extra))
    columns = {k: rows(v, args.quiet_share) for k, v in results.items()}
    for label, runs in results.items():
        codes = sorted({json.dumps(r["config"]["code"]) for r in runs})
        print(f"{label}: osism code " + "; ".join(codes))
    print("\n" + "\n".join(table(columns)))
    for name in names:
        up = columns.get(name + UPSTREAM)
        share = ratio(columns[name][US], up[US]) if up else None
        if share is not None and is_paced_1000(results[name][0]["config"]):
            verdict = "met" if share <= UPSTREAM_CPU_SHARE else "MISSED"
            print(f"\n{name}: server CPU per frame {share:.2f} x upstream's")
            print(f"(target <= 1/3 of upstream's): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
