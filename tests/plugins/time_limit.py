"""A time limit on every test, sync and async.

pytest-timeout bounds each whole test (setup, call and teardown) from outside
the test: that is the limit for sync tests. Interrupting an event loop from a
signal handler leaves it wherever it stood, so async tests are in addition
bounded inside their loop with ``anyio.fail_after``-style cancellation, which
unwinds the test cleanly and names it; pytest-timeout stays behind them with
some grace, for a loop that synchronous code blocks.

The limit comes from ``@pytest.mark.timeout(N)``, else ``--timeout``, else
the ``timeout`` ini setting (10 s in setup.cfg).
"""

import functools
import inspect
from typing import Any, Awaitable, Callable, List, Optional

import anyio
import pytest

# How much longer pytest-timeout waits before it interrupts a blocked loop.
ASYNC_BACKSTOP_GRACE = 2.0


def time_limit_of(item: pytest.Item) -> Optional[float]:
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    else:
        value = item.config.getoption("timeout", None) or item.config.getini("timeout")
    return float(value) if value else None


def bounded(
    test: Callable[..., Awaitable[Any]], limit: float, name: str
) -> Callable[..., Awaitable[None]]:
    """Wrap an async test so that it is cancelled after ``limit`` seconds."""

    @functools.wraps(test)
    async def run_within_limit(*args: Any, **kwargs: Any) -> None:
        with anyio.move_on_after(limit) as scope:
            await test(*args, **kwargs)
        if scope.cancelled_caught:
            pytest.fail(
                f"{name} did not finish within its time limit of {limit:g} s",
                pytrace=False,
            )

    return run_within_limit


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if not inspect.iscoroutinefunction(item.obj):
            continue
        limit = time_limit_of(item)
        if not limit:
            continue
        item.obj = bounded(item.obj, limit, item.nodeid)
        item.add_marker(pytest.mark.timeout(limit + ASYNC_BACKSTOP_GRACE), append=False)
