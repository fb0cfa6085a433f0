"""Child processes: their environment, their output, talking to them one
JSON line at a time, and stopping them, every step with a deadline."""

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Optional

from osism.settings import SECRETS, Settings
from tests.harness import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]

STOP_DEADLINE = 5.0
KILL_DEADLINE = 2.0

# Every environment variable the settings read; stripped from the
# environment of the processes the harness starts, so the developer's shell
# cannot change what a test or a benchmark figure sees.
SETTINGS_ENV = {name.upper() for name in Settings.model_fields} | {
    f"{name.upper()}_FILE" for name in SECRETS
}


def clean_env(**overrides: str) -> Dict[str, str]:
    """The environment for a child process: no inherited osism settings,
    unbuffered Python output, then ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def with_osism_tree(env: Dict[str, str], tree: Optional[Path]) -> Dict[str, str]:
    """``env`` in which `import osism` finds the package in ``tree`` first
    (the benchmark measures a snapshot while others change the work tree)."""
    if tree is None:
        return env
    path = [p for p in (str(tree), env.get("PYTHONPATH")) if p]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def read_output(log: Path) -> str:
    """What a process wrote to its log file so far."""
    return log.read_text(errors="replace") if log.exists() else ""


def stop_process(process: "subprocess.Popen[Any]", sig: int = signal.SIGTERM) -> int:
    """Send ``sig``, wait with a deadline, kill if needed; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=KILL_DEADLINE)
    return int(process.returncode)


class JsonLines:
    """A child that reads commands on stdin and answers with one JSON line
    each on stdout, every answer awaited with a deadline.

    Reads the pipe with os.read (not a buffered file object) so that
    select() sees every byte that has not been consumed yet.
    """

    def __init__(self, process: "subprocess.Popen[bytes]", name: str) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self.name = name
        self._fd = process.stdout.fileno()
        self._pending = b""

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def read(self, timeout: float, what: str) -> Dict[str, Any]:
        """The next JSON line; HarnessError after ``timeout`` seconds or when
        the child exits first."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"{self.name}: {what} not within {timeout:g} s")
            readable, _, _ = select.select([self._fd], [], [], left)
            if not readable:
                continue
            data = os.read(self._fd, 1 << 16)
            if not data:
                code = self.process.wait(timeout=STOP_DEADLINE)
                raise HarnessError(f"{self.name} exited ({code}) before {what}")
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        message: Dict[str, Any] = json.loads(line)
        return message

    def ask(self, command: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        """Send ``command`` as JSON and return the answer."""
        self.send(json.dumps(command))
        return self.read(timeout, f"the answer to {command}")

    def close(self, timeout: float = 10.0) -> int:
        """End the child's input (it is to finish then); its exit code,
        killing it after ``timeout``."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass  # it exited with a command unsent (buffered): closed anyway
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=KILL_DEADLINE)
        finally:
            self.process.stdout.close()
