"""Waiting on a condition with a deadline, sync and async: the only way the
tests and the benchmark wait (no bare sleeps).

A deadline that passes raises :class:`HarnessError`; under pytest the
fixtures plugin (tests/harness/fixtures.py) reports it as a failure with its
message and without a traceback, the benchmark prints it.
"""

import time
from typing import Callable, Optional, TypeVar

import anyio

from tests.harness import HarnessError

T = TypeVar("T")


def wait_for(
    condition: Callable[[], Optional[T]],
    timeout: float = 5.0,
    what: str = "the condition",
    interval: float = 0.01,
) -> T:
    """Poll ``condition()`` until it returns a truthy value and return it;
    raise HarnessError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


async def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Yield to the event loop until ``condition()`` is true; TimeoutError
    after ``timeout``."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)
