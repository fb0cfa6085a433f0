"""Unit tests of osism.connection_waits: the lighter Queue and Event behave
as asyncio's do where uvicorn's WebSocket protocol uses them."""

import asyncio

import anyio
import pytest

from osism.connection_waits import ReceiveQueue, WritableFlag

pytestmark = pytest.mark.anyio


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


class TestReceiveQueue:
    async def test_items_come_out_in_order(self):
        queue = ReceiveQueue()
        assert queue.empty() and queue.qsize() == 0

        for item in ("connect", "receive", "disconnect"):
            queue.put_nowait(item)

        assert queue.qsize() == 3 and not queue.empty()
        with anyio.fail_after(5):
            assert [await queue.get() for _ in range(3)] == [
                "connect",
                "receive",
                "disconnect",
            ]
        assert queue.empty()

    async def test_a_get_waits_for_the_next_item(self):
        queue = ReceiveQueue()
        got = []

        async def get() -> None:
            got.append(await queue.get())

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(get)
                await settle()
                assert got == []
                queue.put_nowait("receive")
        assert got == ["receive"] and queue.empty()

    async def test_waiting_gets_are_served_in_turn(self):
        queue = ReceiveQueue()
        got = []

        async def get(name: str) -> None:
            got.append((name, await queue.get()))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(get, "first")
                await settle()
                tasks.start_soon(get, "second")
                await settle()
                queue.put_nowait(1)
                await settle()
                assert got == [("first", 1)]
                queue.put_nowait(2)
        assert got == [("first", 1), ("second", 2)]

    async def test_a_cancelled_get_takes_nothing(self):
        queue = ReceiveQueue()
        waiting = asyncio.ensure_future(queue.get())
        await settle()

        waiting.cancel()
        await settle()
        queue.put_nowait("receive")

        assert waiting.cancelled()
        with anyio.fail_after(5):
            assert await queue.get() == "receive"

    async def test_a_get_woken_then_cancelled_hands_the_item_on(self):
        queue = ReceiveQueue()
        first = asyncio.ensure_future(queue.get())
        second = asyncio.ensure_future(queue.get())
        await settle()

        queue.put_nowait("receive")  # wakes the first ...
        first.cancel()  # ... which is cancelled before it runs
        with anyio.fail_after(5):
            assert await second == "receive"
        assert first.cancelled()

    async def test_gets_cancelled_before_they_ran_are_passed_over(self):
        queue = ReceiveQueue()
        gone = [asyncio.ensure_future(queue.get()) for _ in range(2)]
        await settle()
        for getter in gone:
            getter.cancel()  # done, still listed until they run

        queue.put_nowait("receive")
        await settle()
        remaining = asyncio.ensure_future(queue.get())

        with anyio.fail_after(5):
            assert await remaining == "receive"
        assert all(getter.cancelled() for getter in gone)

    async def test_a_get_cancelled_before_it_ran_leaves_the_next_its_item(self):
        queue = ReceiveQueue()
        gone = asyncio.ensure_future(queue.get())
        waiting = asyncio.ensure_future(queue.get())
        await settle()
        gone.cancel()

        queue.put_nowait("receive")

        with anyio.fail_after(5):
            assert await waiting == "receive"
        assert gone.cancelled()

    async def test_a_woken_get_that_finds_nothing_waits_again(self):
        queue = ReceiveQueue()
        waiting = asyncio.ensure_future(queue.get())
        await settle()

        queue.put_nowait("receive")
        # Taken by another reader before the woken one ran.
        with pytest.raises(StopIteration) as taken:
            queue.get().send(None)
        assert taken.value.value == "receive"
        await settle()
        assert not waiting.done()
        queue.put_nowait("again")
        with anyio.fail_after(5):
            assert await waiting == "again"


class TestWritableFlag:
    async def test_it_is_made_set_and_a_wait_returns_at_once(self):
        flag = WritableFlag()

        assert flag.is_set()
        with anyio.fail_after(5):
            assert await flag.wait() is True

    async def test_a_wait_lasts_until_it_is_set_again(self):
        flag = WritableFlag()
        flag.clear()
        waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
        await settle()
        assert not flag.is_set()
        assert not any(w.done() for w in waiters)

        flag.set()
        flag.set()

        with anyio.fail_after(5):
            assert await asyncio.gather(*waiters) == [True, True, True]
        assert flag.is_set()

    async def test_a_cancelled_wait_leaves_the_others(self):
        flag = WritableFlag()
        flag.clear()
        cancelled = asyncio.ensure_future(flag.wait())
        waiting = asyncio.ensure_future(flag.wait())
        await settle()

        cancelled.cancel()
        await settle()
        flag.set()

        with anyio.fail_after(5):
            assert await waiting is True
        assert cancelled.cancelled()

    async def test_a_wait_cancelled_as_it_is_set(self):
        flag = WritableFlag()
        flag.clear()
        waiting = asyncio.ensure_future(flag.wait())
        await settle()

        flag.set()
        waiting.cancel()
        await settle()

        assert waiting.cancelled() or waiting.result() is True
        assert flag.is_set()

    async def test_a_wait_cancelled_before_it_is_set(self):
        flag = WritableFlag()
        flag.clear()
        gone = asyncio.ensure_future(flag.wait())
        waiting = asyncio.ensure_future(flag.wait())
        await settle()

        gone.cancel()  # done, still listed until it runs
        flag.set()

        with anyio.fail_after(5):
            assert await waiting is True
        assert gone.cancelled()
