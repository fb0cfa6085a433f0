"""Waiting on a condition with a deadline, for tests that cannot await an event."""

from typing import Callable

import anyio


async def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Yield to the event loop until ``condition()`` is true; fail after ``timeout``."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)
