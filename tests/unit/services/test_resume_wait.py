"""Unit tests of osism.services.resume_wait: a resume waits, within its
bound, for the Redis history to be loaded."""

import asyncio
import contextlib
import logging

import anyio
import pytest

from osism.services.resume_wait import history_ready

pytestmark = pytest.mark.anyio

WARNING = logging.WARNING


def notification(event_id):
    return ("x.y", {}, None, event_id, None)


@contextlib.asynccontextmanager
async def broadcasting(manager):
    task = asyncio.create_task(manager._broadcast_events())
    try:
        yield
    finally:
        task.cancel()
        with anyio.fail_after(5):
            await task


async def test_a_current_history_answers_at_once(manager, websocket_logs):
    with anyio.fail_after(1):
        assert await history_ready(manager, "unknown", timeout=30) is True
    assert websocket_logs() == []


async def test_a_known_event_answers_at_once_while_the_history_loads(manager):
    manager.remember([notification("e1")])
    manager.history.current = False

    with anyio.fail_after(1):
        assert await history_ready(manager, "e1", timeout=30) is True


async def test_an_unknown_event_waits_until_the_history_is_loaded(manager):
    manager.history.current = False

    def load():
        manager.remember([notification("e1"), notification("e2")])
        manager.history.current = True

    asyncio.get_running_loop().call_later(0.05, load)
    with anyio.fail_after(5):
        assert await history_ready(manager, "e1", timeout=30) is True
    assert "e1" in manager.history


async def test_an_event_not_in_redis_either_is_answered_once_it_is_loaded(manager):
    manager.history.current = False
    asyncio.get_running_loop().call_later(
        0.05, setattr, manager.history, "current", True
    )

    with anyio.fail_after(5):
        assert await history_ready(manager, "never-seen", timeout=30) is True


async def test_caught_up_events_are_waited_for_until_fanned_out(manager):
    """After a broken subscription the missed events come through the
    queue: the resume waits for them to be in the history."""
    manager.enqueue_notification("x.y", {}, None, "missed", None)

    with anyio.fail_after(5):
        async with broadcasting(manager):
            assert await history_ready(manager, "missed", timeout=30) is True
    assert "missed" in manager.history


async def test_without_the_history_in_time_it_gives_up_with_a_warning(
    manager, websocket_logs
):
    manager.history.current = False

    with anyio.fail_after(5):
        assert await history_ready(manager, "e\n1", timeout=0.05) is False

    assert websocket_logs() == [
        (
            "osism.websocket",
            WARNING,
            "Answering a resume after 'e\\n1' without the Redis history: it was "
            "not loaded within 0.05 s (RESUME_HISTORY_WAIT)",
        )
    ]


async def test_a_zero_wait_does_not_wait(manager):
    manager.history.current = False

    with anyio.fail_after(1):
        assert await history_ready(manager, "e1", timeout=0) is False
