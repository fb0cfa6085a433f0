"""The listener (``python -m osism service listener``) as a child process."""

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from osism.services.notification_queues import PRIORITIES
from osism.settings import default_topic
from tests.harness.processes import KILL_DEADLINE, read_output
from tests.harness import HarnessError

LISTENER_START_DEADLINE = 10.0
LISTENER_STOP_DEADLINE = 10.0


class ListenerProcess:
    """``python -m osism service listener`` running as a child process."""

    def __init__(self, env: Dict[str, str], cwd: Path, log: Path) -> None:
        self.env = env
        self.log = log
        self.prefix = env["LISTENER_QUEUE_PREFIX"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "osism", "service", "listener"],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return read_output(self.log)

    def queue(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def bound_line(
        self,
        service: str,
        exchange: Optional[str] = None,
        topics: Sequence[str] = (),
    ) -> str:
        """The line the listener logs once ``service``'s queue is bound (to
        the exchange of its name and its default topic unless given)."""
        keys = [
            f"{topic}.{priority}"
            for topic in (topics or [default_topic(service)])
            for priority in PRIORITIES
        ]
        return (
            f"osism.listener: Bound queue {self.queue(service)} to exchange "
            f"{exchange or service} (routing keys {', '.join(keys)})"
        )

    def wait_for_output(
        self, text: str, count: int = 1, timeout: float = LISTENER_START_DEADLINE
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            if self.process.poll() is not None or time.monotonic() >= deadline:
                raise HarnessError(
                    f"the listener did not log {text!r} ({count}x) within "
                    f"{timeout:g} s (exit code {self.process.poll()}):\n"
                    f"{self.output()[-5000:]}"
                )
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=LISTENER_STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=KILL_DEADLINE)
        return int(self.process.returncode)
