"""The parent's side of :mod:`tests.harness.publisher_process`: an event
bridge that publishes from a process of its own, as the listener's does."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from tests.harness.processes import REPO_ROOT, JsonLines, read_output
from tests.harness.redis_server import RedisServer

# Seconds one command may take: a publish while Redis is down includes one
# refused connection attempt, which is quick on loopback.
ANSWER_DEADLINE = 5.0
SCRIPT = Path(__file__).resolve().parent / "publisher_process.py"


def publisher_env(
    base: Dict[str, str], redis_server: RedisServer, channel: str, **settings: str
) -> Dict[str, str]:
    """``base`` (a clean environment) with the bridge's Redis settings, and
    PYTHONPATH ending in the work tree, where ``tests`` is."""
    path = [p for p in (base.get("PYTHONPATH"), str(REPO_ROOT)) if p]
    return {
        **base,
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "REDIS_CHANNEL": channel,
        "PYTHONPATH": os.pathsep.join(path),
        **settings,
    }


class PublisherProcess:
    """A running publisher process; every call waits for its answer."""

    def __init__(self, env: Dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.lines = JsonLines(self.process, f"publisher (log {log})")

    def publish(self, event_type: str, payload: Dict[str, Any]) -> None:
        self.lines.ask({"event_type": event_type, "payload": payload}, ANSWER_DEADLINE)

    def health(self) -> Dict[str, Any]:
        return self.lines.ask({"health": True}, ANSWER_DEADLINE)

    def burst(
        self, events: int, rate: Optional[float], timeout: float
    ) -> Dict[str, Any]:
        """Publish ``events`` numbered events (see numbered_events); when they
        went out and what it cost the publisher."""
        command = {"burst": {"events": events, "rate": rate}}
        return self.lines.ask(command, timeout)

    def output(self) -> str:
        return read_output(self.log)

    def close(self, timeout: float = 10.0) -> int:
        """End its input; it publishes nothing more and shuts its bridge down."""
        return self.lines.close(timeout)
