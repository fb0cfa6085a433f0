"""Talking to the benchmark's child processes: one JSON line at a time, each
read with a deadline, and a thread that watches the server during the run."""

import json
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from servers import sample, try_health


class ChildLines:
    """JSON lines from a child's standard output, read with deadlines.

    Reads the pipe with os.read (not a buffered file object) so that
    select() sees every byte that has not been consumed yet.
    """

    def __init__(self, proc: "subprocess.Popen[bytes]", name: str) -> None:
        assert proc.stdout is not None and proc.stdin is not None
        self.proc = proc
        self.name = name
        self._fd = proc.stdout.fileno()
        self._pending = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout: float, what: str) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {what} not within {timeout:g} s")
            readable, _, _ = select.select([self._fd], [], [], left)
            if not readable:
                continue
            data = os.read(self._fd, 1 << 16)
            if not data:
                code = self.proc.wait(timeout=5)
                raise RuntimeError(f"{self.name} exited ({code}) before {what}")
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        message: Dict[str, Any] = json.loads(line)
        return message


@dataclass
class WatchResult:
    max_rss_kib: int = 0
    dropped_at_ns: Optional[int] = None
    health_polls: int = 0


class ServerWatch(threading.Thread):
    """Samples the server's RSS from /proc (costs the server nothing) and,
    when asked, polls its health for the first time a client is dropped
    (each poll is an HTTP request the server answers, so only then)."""

    RSS_INTERVAL = 0.05
    HEALTH_INTERVAL = 0.1

    def __init__(self, pid: int, port: int, watch_drops: bool) -> None:
        super().__init__(name="bench-server-watch", daemon=True)
        self.pid = pid
        self.port = port
        self.watch_drops = watch_drops
        self.result = WatchResult()
        self._stopping = threading.Event()
        self._dropped_before = self._dropped()

    def _dropped(self) -> Optional[int]:
        if not self.watch_drops:
            return None
        health = try_health(self.port)
        self.result.health_polls += 1
        return None if health is None else health["websocket"]["counters"]["dropped"]

    def run(self) -> None:
        next_health = time.monotonic()
        while not self._stopping.wait(self.RSS_INTERVAL):
            rss = sample(self.pid).rss_kib
            self.result.max_rss_kib = max(self.result.max_rss_kib, rss)
            if self.result.dropped_at_ns is None and time.monotonic() >= next_health:
                next_health += self.HEALTH_INTERVAL
                dropped = self._dropped()
                if dropped is not None and dropped > (self._dropped_before or 0):
                    self.result.dropped_at_ns = time.monotonic_ns()

    def stop(self) -> WatchResult:
        self._stopping.set()
        self.join(timeout=5)
        return self.result
