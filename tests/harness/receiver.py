"""The parent's side of :mod:`tests.harness.receiver_process`: many
numbered-event clients in a process of their own."""

import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any, Dict, Tuple

from tests.harness.processes import REPO_ROOT, STOP_DEADLINE, JsonLines, clean_env


class ReceiverProcess:
    """Starts the receiver and waits until all its clients are connected;
    stop it with :meth:`close` (after :meth:`result`, or to abort)."""

    def __init__(
        self,
        port: int,
        events: int,
        clients: int,
        workdir: Path,
        connect_timeout: float,
        **options: Any,
    ) -> None:
        """``options`` are receiver_process's others (idle_timeout=5.0,
        pause_ms=1.0, deadline=120.0, stopped_client=True, compression=True)."""
        self.latency_file = workdir / "latencies.bin"
        argv = [sys.executable, "-m", "tests.harness.receiver_process"]
        argv += ["--port", str(port), "--latency-file", str(self.latency_file)]
        argv += ["--events", str(events), "--clients", str(clients)]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            argv += (
                [flag]
                if value is True
                else [] if value is False else [flag, str(value)]
            )
        with open(workdir / "receiver.log", "wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=clean_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.lines = JsonLines(self.process, f"receiver (log {log.name})")
        try:
            self.lines.read(connect_timeout, "clients connected")
        except BaseException:
            self.close()
            raise

    def published(self) -> None:
        """Publishing is over: from now on, the idle timeout counts."""
        try:
            self.lines.send("published")
        except BrokenPipeError:
            pass  # every client had every event already: the receiver is done

    def result(self, timeout: float) -> Dict[str, Any]:
        """What every client received (see receiver_process.main)."""
        return self.lines.read(timeout, "receiver result")

    def latencies(self) -> Tuple["array[int]", "array[int]"]:
        """Latencies and send times (ns) of all events, client after client."""
        values = array("q")
        values.frombytes(self.latency_file.read_bytes())
        half = len(values) // 2
        return values[:half], values[half:]

    def close(self) -> None:
        """End its input, which stops a receiver still running; wait for it
        to exit (killed after the deadline)."""
        self.lines.close(timeout=STOP_DEADLINE)
