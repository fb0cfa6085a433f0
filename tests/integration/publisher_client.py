"""The test side of :mod:`tests.integration.publisher_process`."""

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

# Seconds one command may take: a publish while Redis is down includes one
# refused connection attempt, which is quick on loopback.
ANSWER_DEADLINE = 5.0


class PublisherProcess:
    """A running publisher process; every call waits for its answer."""

    def __init__(self, env: Dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.publisher_process"],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def publish(self, event_type: str, payload: Dict[str, Any]) -> None:
        self._ask({"event_type": event_type, "payload": payload})

    def health(self) -> Dict[str, Any]:
        return self._ask({"health": True})

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self, timeout: float = 10.0) -> int:
        """End its input; it publishes nothing more and shuts its bridge down."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=timeout)
        finally:
            self.process.stdout.close()

    def _ask(self, command: Dict[str, Any]) -> Dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + ANSWER_DEADLINE
            while not selector.select(max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"publisher did not answer {command} within "
                        f"{ANSWER_DEADLINE:g} s:\n{self.output()[-2000:]}"
                    )
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"publisher exited:\n{self.output()[-2000:]}")
        answer: Dict[str, Any] = json.loads(line)
        return answer
