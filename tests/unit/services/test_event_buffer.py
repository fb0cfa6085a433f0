"""Unit tests of osism.services.event_buffer.

Only the wake-up tests run a real thread: a consumer blocked in ``get`` is
the behaviour under test there. They are joined with a deadline.
"""

import threading
from typing import Any, List, Tuple

import pytest

from osism.services.event_buffer import EventBuffer

# How long a woken consumer may take; a consumer that is not woken waits
# CONSUMER_TIMEOUT, which is longer, so the difference shows.
WAKE_DEADLINE = 2.0
CONSUMER_TIMEOUT = 5.0


def contents(buffer: EventBuffer[Any]) -> List[Any]:
    items = []
    while not buffer.empty():
        items.append(buffer.get_nowait())
        buffer.task_done()
    return items


class TestOrder:
    def test_items_come_out_in_the_order_they_went_in(self):
        buffer: EventBuffer[int] = EventBuffer(5)

        for item in (1, 2, 3):
            buffer.put(item)

        assert contents(buffer) == [1, 2, 3]


class TestBound:
    def test_a_put_into_a_full_buffer_drops_the_oldest_and_counts_it(self):
        buffer: EventBuffer[int] = EventBuffer(3)

        for item in range(1, 6):
            buffer.put(item)

        assert buffer.dropped == 2
        assert buffer.qsize() == 3
        assert contents(buffer) == [3, 4, 5]

    def test_put_nowait_into_a_full_buffer_drops_the_oldest_too(self):
        buffer: EventBuffer[str] = EventBuffer(1)

        buffer.put_nowait("old")
        buffer.put_nowait("new")

        assert buffer.dropped == 1
        assert contents(buffer) == ["new"]

    def test_a_buffer_that_never_filled_has_dropped_nothing(self):
        buffer: EventBuffer[str] = EventBuffer(2)

        buffer.put("a")
        buffer.put("b")

        assert buffer.dropped == 0
        assert contents(buffer) == ["a", "b"]

    def test_a_put_into_a_full_buffer_neither_blocks_nor_raises_full(self):
        # A plain queue.Queue raises queue.Full here: at once for put_nowait,
        # after the timeout for a blocking put.
        buffer: EventBuffer[str] = EventBuffer(1)
        buffer.put("a")

        buffer.put_nowait("b")
        buffer.put("c", block=True, timeout=0.01)

        assert buffer.dropped == 2
        assert contents(buffer) == ["c"]

    @pytest.mark.parametrize("maxsize", [0, -1])
    def test_a_buffer_without_a_positive_bound_is_refused(self, maxsize):
        with pytest.raises(
            ValueError, match=f"^an event buffer needs a bound, got {maxsize}$"
        ):
            EventBuffer(maxsize)

    def test_a_buffer_of_one_item_is_allowed(self):
        assert EventBuffer(1).maxsize == 1


class TestTaskAccounting:
    def test_join_returns_after_drops_once_every_kept_item_is_done(self):
        buffer: EventBuffer[str] = EventBuffer(2)
        for item in ("a", "b", "c", "d"):
            buffer.put(item)

        assert contents(buffer) == ["c", "d"]

        # Checked first, so that a wrong count fails here instead of hanging.
        assert buffer.unfinished_tasks == 0
        buffer.join()

    def test_a_requeued_item_is_unfinished_until_taken_and_done_again(self):
        buffer: EventBuffer[str] = EventBuffer(2)
        buffer.put("a")
        item = buffer.get_nowait()
        buffer.task_done()

        buffer.requeue(item)

        assert buffer.unfinished_tasks == 1
        assert contents(buffer) == ["a"]
        assert buffer.unfinished_tasks == 0


class TestRequeue:
    def test_requeue_puts_the_item_back_at_the_head(self):
        buffer: EventBuffer[str] = EventBuffer(3)
        for item in ("a", "b", "c"):
            buffer.put(item)
        head = buffer.get_nowait()
        buffer.task_done()

        buffer.requeue(head)

        assert buffer.dropped == 0
        assert contents(buffer) == ["a", "b", "c"]

    def test_requeue_into_a_full_buffer_drops_the_requeued_item_and_counts_it(
        self,
    ):
        buffer: EventBuffer[str] = EventBuffer(2)
        buffer.put("a")
        buffer.put("b")

        buffer.requeue("z")
        buffer.requeue("y")

        assert buffer.dropped == 2
        assert buffer.unfinished_tasks == 2
        assert contents(buffer) == ["a", "b"]


@pytest.fixture
def waiting_consumer(monkeypatch) -> Any:
    """Start a consumer blocked in ``get`` on an empty buffer.

    Returns (buffer, thread, received) once the consumer waits: the wrapped
    ``not_empty.wait`` signals under the buffer's lock, and a put takes that
    lock only after the consumer released it inside the wait, so the put
    cannot come before the consumer waits.
    """
    buffer: EventBuffer[str] = EventBuffer(2)
    waiting = threading.Event()
    wait = buffer.not_empty.wait

    def signal_and_wait(timeout: Any = None) -> bool:
        waiting.set()
        return wait(timeout)

    monkeypatch.setattr(buffer.not_empty, "wait", signal_and_wait)
    received: List[str] = []
    thread = threading.Thread(
        target=lambda: received.append(buffer.get(timeout=CONSUMER_TIMEOUT)),
        name="test-event-buffer-consumer",
        daemon=True,
    )
    thread.start()
    assert waiting.wait(WAKE_DEADLINE), "the consumer did not start waiting"
    result: Tuple[EventBuffer[str], threading.Thread, List[str]] = (
        buffer,
        thread,
        received,
    )
    yield result
    thread.join(CONSUMER_TIMEOUT)


class TestWakingAConsumer:
    def test_a_put_wakes_a_consumer_waiting_on_an_empty_buffer(self, waiting_consumer):
        buffer, thread, received = waiting_consumer

        buffer.put("a")

        thread.join(WAKE_DEADLINE)
        assert not thread.is_alive(), "the consumer was not woken by put"
        assert received == ["a"]

    def test_a_requeue_wakes_a_consumer_waiting_on_an_empty_buffer(
        self, waiting_consumer
    ):
        buffer, thread, received = waiting_consumer

        buffer.requeue("a")

        thread.join(WAKE_DEADLINE)
        assert not thread.is_alive(), "the consumer was not woken by requeue"
        assert received == ["a"]
