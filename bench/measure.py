"""What the benchmark reads about its processes and the machine: /proc
samples, the server watched during the run, and which code ran."""

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

# The benchmark's scripts import this module before the shared test
# harness: it is the package tests.harness of this work tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.proc_stats import children_of, sample  # noqa: E402


def code_identity(root: Path) -> Dict[str, Any]:
    """Which osism code a run measured: a digest of its osism/*.py files,
    and the git commit and whether osism/ differs from it, where known
    (others change osism/ in the same work tree, so the commit alone does
    not say what ran)."""
    digest = hashlib.sha256()
    for path in sorted((root / "osism").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    identity: Dict[str, Any] = {"tree": str(root)}
    identity["osism_sha256"] = digest.hexdigest()[:12]
    if (root / ".git").exists():
        identity["git_head"] = _git(root, "rev-parse", "--short", "HEAD")
        identity["osism_modified"] = bool(
            _git(root, "status", "--porcelain", "--", "osism")
        )
    return identity


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


def check_is_server(pid: int) -> None:
    """Fail unless ``pid`` is the Python process that runs uvicorn itself: a
    wrapper (a shell, a launcher) would have the server as a child, and its
    /proc figures would be the wrapper's."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if not Path(cmdline[0].decode()).name.startswith("python"):
        raise RuntimeError(f"process {pid} is not Python: {cmdline!r}")
    children = children_of(pid)
    if children:
        raise RuntimeError(f"server process {pid} has children {children}")


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


class ServerWatch(threading.Thread):
    """Samples the server's RSS from /proc every 50 ms (costs the server
    nothing) and, when asked, polls its health every 0.1 s for the first time
    a client is dropped (each poll is an HTTP request the server answers, so
    only then)."""

    def __init__(
        self,
        pid: int,
        try_health: Callable[[], Optional[Dict[str, Any]]],
        watch_drops: bool,
    ) -> None:
        super().__init__(name="bench-server-watch", daemon=True)
        self.pid, self.try_health, self.watch_drops = pid, try_health, watch_drops
        self.max_rss_kib, self.health_polls = 0, 0
        self.dropped_at_ns: Optional[int] = None
        self._stopping = threading.Event()
        self._dropped_before = self._dropped()

    def _dropped(self) -> Optional[int]:
        if not self.watch_drops:
            return None
        health = self.try_health()
        self.health_polls += 1
        return None if health is None else health["websocket"]["counters"]["dropped"]

    def run(self) -> None:
        next_health = time.monotonic()
        while not self._stopping.wait(0.05):
            self.max_rss_kib = max(self.max_rss_kib, sample(self.pid).rss_kib)
            if self.dropped_at_ns is None and time.monotonic() >= next_health:
                next_health += 0.1
                dropped = self._dropped()
                if dropped is not None and dropped > (self._dropped_before or 0):
                    self.dropped_at_ns = time.monotonic_ns()

    def stop(self) -> "ServerWatch":
        self._stopping.set()
        self.join(timeout=5)
        return self
