"""Unit tests of osism.services.client_outbox."""

import asyncio
from unittest.mock import AsyncMock

import anyio
import pytest

from osism.services.client_outbox import ClientOutbox, OutboxFull
from tests.harness.waiting import wait_until


def make_outbox(send=None, send_timeout=5.0, max_pending=3):
    return ClientOutbox(
        send or AsyncMock(), send_timeout=send_timeout, max_pending=max_pending
    )


@pytest.fixture
async def draining():
    """Run an outbox's drain_forever as a task; cancelled after the test."""
    tasks = []

    def start(outbox):
        task = asyncio.create_task(outbox.drain_forever())
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    with anyio.fail_after(5):
        await asyncio.gather(*tasks, return_exceptions=True)


class TestPut:
    def test_put_accepts_frames_up_to_the_bound(self):
        outbox = make_outbox(max_pending=2)

        assert outbox.put("a") is True
        assert outbox.put("b") is True

    def test_put_beyond_the_bound_overflows_and_refuses_for_good(self):
        outbox = make_outbox(max_pending=2)
        outbox.put("a")
        outbox.put("b")

        assert outbox.put("c") is False
        assert outbox.put("d") is False

    def test_settings_are_kept(self):
        outbox = make_outbox(send_timeout=1.5, max_pending=7)

        assert (outbox.send_timeout, outbox.max_pending) == (1.5, 7)


@pytest.mark.anyio
class TestDrainForever:
    async def test_frames_are_sent_in_order(self, draining):
        send = AsyncMock()
        outbox = make_outbox(send, max_pending=10)
        for frame in "abc":
            outbox.put(frame)

        draining(outbox)
        await wait_until(lambda: send.await_count == 3)
        outbox.put("d")
        await wait_until(lambda: send.await_count == 4)

        assert [c.args[0] for c in send.await_args_list] == ["a", "b", "c", "d"]

    async def test_a_failing_send_ends_the_drain_with_its_error(self, draining):
        outbox = make_outbox(AsyncMock(side_effect=ConnectionResetError("gone")))
        outbox.put("a")

        with anyio.fail_after(5), pytest.raises(ConnectionResetError, match="gone"):
            await draining(outbox)

    async def test_a_send_over_the_time_bound_ends_the_drain_with_timeout(
        self, draining
    ):
        async def hang(frame):
            await asyncio.Event().wait()

        outbox = make_outbox(AsyncMock(side_effect=hang), send_timeout=0.01)
        outbox.put("a")

        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await draining(outbox)

    async def test_the_time_bound_is_per_send_not_per_batch(self, draining):
        """Twenty sends of 10 ms each take longer than the 50 ms bound
        together, and none of them alone: the client is kept."""
        sent = []

        async def slow_send(frame):
            await asyncio.sleep(0.01)
            sent.append(frame)

        outbox = make_outbox(
            AsyncMock(side_effect=slow_send), send_timeout=0.05, max_pending=20
        )
        for frame in range(20):
            outbox.put(str(frame))
        task = draining(outbox)

        await wait_until(lambda: len(sent) == 20)
        assert not task.done()
        assert sent == [str(frame) for frame in range(20)]

    async def test_an_overflow_cuts_a_blocked_send_short_and_ends_the_drain(
        self, draining
    ):
        sent = []

        async def blocked_send(frame):
            sent.append(frame)
            await asyncio.Event().wait()

        outbox = make_outbox(AsyncMock(side_effect=blocked_send), max_pending=1)
        outbox.put("first")
        task = draining(outbox)
        await wait_until(lambda: sent == ["first"])
        assert outbox.put("second") is True
        assert outbox.put("third") is False

        with anyio.fail_after(5), pytest.raises(
            OutboxFull, match=r"^more than 1 frames were pending$"
        ):
            await task
        assert sent == ["first"]

    async def test_an_overflow_while_not_sending_ends_the_drain_when_it_wakes(
        self, draining
    ):
        outbox = make_outbox(AsyncMock(), max_pending=1)
        outbox.put("a")
        outbox.put("b")

        with anyio.fail_after(5), pytest.raises(OutboxFull):
            await draining(outbox)

    @pytest.mark.parametrize("overflow_too", [False, True])
    async def test_cancelling_a_blocked_drain_is_a_cancellation(
        self, draining, overflow_too
    ):
        sent = []

        async def blocked_send(frame):
            sent.append(frame)
            await asyncio.Event().wait()

        outbox = make_outbox(AsyncMock(side_effect=blocked_send), max_pending=1)
        outbox.put("first")
        task = draining(outbox)
        await wait_until(lambda: sent == ["first"])

        task.cancel()
        if overflow_too:
            outbox.put("second")
            outbox.put("third")

        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await task

    async def test_an_idle_outbox_waits_without_sending(self, draining):
        send = AsyncMock()
        outbox = make_outbox(send)
        task = draining(outbox)

        await asyncio.sleep(0)
        await asyncio.sleep(0)

        assert not task.done()
        send.assert_not_awaited()
