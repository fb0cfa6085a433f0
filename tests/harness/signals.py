"""Real signals to the processes under test (redis-server, the listener, an
API process): ``kill -9``, and a stop (SIGSTOP) that is always continued.

Each takes the ``subprocess.Popen`` of a process the harness started (the
``process`` of a RedisServer, ListenerProcess or ApiServer); a process that
ended already is left alone.
"""

import contextlib
import os
import signal
import subprocess
from typing import Any, Iterator

from tests.harness import HarnessError
from tests.harness.processes import KILL_DEADLINE


def kill(process: "subprocess.Popen[Any]") -> int:
    """``kill -9`` and wait for the end; the exit code (-9 unless it had
    ended before)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    try:
        return int(process.wait(timeout=KILL_DEADLINE))
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"process {process.pid} did not end within {KILL_DEADLINE:g} s of SIGKILL"
        )


def stop(process: "subprocess.Popen[Any]") -> None:
    """SIGSTOP: the process stops answering without closing anything."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)


def cont(process: "subprocess.Popen[Any]") -> None:
    """SIGCONT: a stopped process goes on where it was."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)


@contextlib.contextmanager
def stopped(process: "subprocess.Popen[Any]") -> Iterator[None]:
    """SIGSTOP for the block; SIGCONT at its end, also when it fails (a
    stopped process would outlive the test's teardown, which waits for it)."""
    stop(process)
    try:
        yield
    finally:
        cont(process)


def terminate(process: "subprocess.Popen[Any]") -> None:
    """SIGTERM, without waiting."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
