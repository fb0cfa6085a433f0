"""Unit tests of osism.services.bridge.delivery: the hand-over to the
WebSocket manager and the local queue's processor."""

import asyncio
import queue
import types
from collections import Counter
from typing import Any, List
from unittest.mock import AsyncMock, MagicMock

import pytest

from osism.services.bridge.delivery import Handover, LocalProcessor
from osism.services.event_buffer import EventBuffer
from osism.services.websocket_manager import WebSocketManager
from tests.unit.services.bridge_doubles import FakeShutdown
from tests.unit.services.bridge_log_lines import debug, error, info, warning

EVENT_TYPE = "baremetal.node.power_set.end"
PAYLOAD = {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}
EVENT = {"event_type": EVENT_TYPE, "payload": PAYLOAD}
STARTED = info("Event processor started")
STOPPED = info("Event processor stopped")


@pytest.fixture
def handover() -> Handover:
    return Handover(Counter())


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class TestRemembering:
    def test_events_are_remembered_on_the_managers_loop(self, handover, loop):
        manager = MagicMock(loop=loop)
        handover.manager = manager
        event = {**EVENT, "id": "e-1", "publisher_id": "p"}

        handover.remember([event])

        manager.remember.assert_not_called()
        loop.run_until_complete(asyncio.sleep(0))
        manager.remember.assert_called_once_with(
            [(EVENT_TYPE, PAYLOAD, "p", "e-1", None)]
        )

    def test_without_a_loop_yet_they_are_remembered_at_once(self, handover):
        manager = MagicMock(loop=None)
        handover.manager = manager

        handover.remember([EVENT])

        manager.remember.assert_called_once_with(
            [(EVENT_TYPE, PAYLOAD, None, None, None)]
        )


class TestMarkingTheHistory:
    """Whether the manager's history holds what Redis has (resume_wait)."""

    def test_it_is_marked_on_the_managers_loop(self, handover, loop):
        manager = WebSocketManager()
        manager.loop = loop
        handover.manager = manager
        handover.remember([{**EVENT, "id": "e-1"}])

        handover.mark_history(current=False)

        # Nothing changes in the bridge's thread.
        assert manager.history.current is True and "e-1" not in manager.history
        loop.run_until_complete(asyncio.sleep(0))
        assert manager.history.current is False and "e-1" in manager.history

    def test_without_a_loop_yet_it_is_marked_at_once(self, handover):
        manager = WebSocketManager()
        handover.manager = manager

        handover.mark_history(current=False)

        assert manager.history.current is False

    @pytest.mark.parametrize(
        "manager", [None, MagicMock(), types.SimpleNamespace(history=None)]
    )
    def test_a_manager_without_an_event_history_is_not_told(self, handover, manager):
        handover.manager = manager

        handover.mark_history(current=False)

    def test_a_manager_whose_loop_is_closed_is_not_told(self, handover, bridge_logs):
        manager = WebSocketManager()
        closed = asyncio.new_event_loop()
        closed.close()
        manager.loop = closed
        handover.manager = manager

        handover.mark_history(current=False)

        assert manager.history.current is True
        assert bridge_logs() == [
            debug("Not marking the history of a stopped manager: Event loop is closed")
        ]


class TestHandingOver:
    def test_without_a_manager_the_event_is_dropped_with_a_warning(
        self, handover, bridge_logs
    ):
        handover.hand_over(EVENT)
        handover.hand_over(EVENT)

        assert handover.stats == Counter({"dropped": 2})
        assert (
            bridge_logs()
            == [warning("No WebSocket manager available, dropping event")] * 2
        )

    def test_with_a_manager_loop_the_event_is_scheduled_onto_that_loop(
        self, handover, loop, bridge_logs
    ):
        manager = MagicMock(loop=loop)
        handover.manager = manager

        handover.hand_over(EVENT)

        manager.deliver_notification.assert_not_called()
        loop.run_until_complete(asyncio.sleep(0))
        manager.deliver_notification.assert_called_once_with(
            EVENT_TYPE, PAYLOAD, None, None, None
        )
        manager.broadcast_event_from_notification.assert_not_called()
        assert handover.stats == Counter()
        assert bridge_logs() == []

    def test_on_the_managers_loop_the_event_is_delivered_at_once(
        self, handover, loop, mocker
    ):
        """Read on the loop (see loop_reader): no hand-over, no wake-up."""
        manager = MagicMock(loop=loop)
        handover.manager = manager
        wake_ups = mocker.spy(loop, "call_soon_threadsafe")

        async def read_on_the_loop() -> None:
            handover.hand_over(EVENT)
            manager.deliver_notification.assert_called_once_with(
                EVENT_TYPE, PAYLOAD, None, None, None
            )

        loop.run_until_complete(read_on_the_loop())
        assert wake_ups.call_count == 0
        assert handover.stats == Counter()

    def test_events_on_one_loop_go_in_one_batch_in_order(self, handover, loop, mocker):
        manager = MagicMock(loop=loop)
        handover.manager = manager
        second = {**EVENT, "event_type": "second"}
        wake_ups = mocker.spy(loop, "call_soon_threadsafe")

        handover.hand_over(EVENT)
        handover.hand_over(second)
        loop.run_until_complete(asyncio.sleep(0))

        assert wake_ups.call_count == 1

        assert [c.args[0] for c in manager.deliver_notification.call_args_list] == [
            EVENT_TYPE,
            "second",
        ]

    def test_another_manager_or_loop_gets_a_hand_over_of_its_own(self, handover, loop):
        first = MagicMock(loop=loop)
        handover.manager = first
        handover.hand_over(EVENT)
        loop.run_until_complete(asyncio.sleep(0))
        other_loop = asyncio.new_event_loop()
        try:
            second = MagicMock(loop=other_loop)
            handover.manager = second
            handover.hand_over(EVENT)
            other_loop.run_until_complete(asyncio.sleep(0))
            handover.manager = MagicMock(loop=other_loop)
            handover.hand_over(EVENT)
            other_loop.run_until_complete(asyncio.sleep(0))
        finally:
            other_loop.close()

        assert first.deliver_notification.call_count == 1
        assert second.deliver_notification.call_count == 1
        assert handover.manager.deliver_notification.call_count == 1

    @pytest.mark.parametrize(
        "publisher_id, handed_over",
        [
            pytest.param("nova-compute:host1", "nova-compute:host1", id="a-string"),
            pytest.param(None, None, id="null"),
            pytest.param(["not", "an", "id"], None, id="not-a-string-is-left-out"),
        ],
    )
    def test_the_publisher_id_is_handed_over_with_the_event(
        self, handover, loop, publisher_id, handed_over
    ):
        manager = MagicMock(loop=loop)
        handover.manager = manager

        handover.hand_over({**EVENT, "publisher_id": publisher_id})
        loop.run_until_complete(asyncio.sleep(0))

        manager.deliver_notification.assert_called_once_with(
            EVENT_TYPE, PAYLOAD, handed_over, None, None
        )

    def test_the_id_and_time_it_entered_with_are_handed_over(self, handover, loop):
        manager = MagicMock(loop=loop)
        handover.manager = manager
        event = {**EVENT, "id": "e-1", "timestamp": "2026-12-06T00:00:00Z"}

        handover.hand_over(event)
        loop.run_until_complete(asyncio.sleep(0))

        manager.deliver_notification.assert_called_once_with(
            EVENT_TYPE, PAYLOAD, None, "e-1", "2026-12-06T00:00:00Z"
        )

    def test_a_closed_manager_loop_drops_the_event_with_an_error(
        self, handover, bridge_logs
    ):
        closed = asyncio.new_event_loop()
        closed.close()
        handover.manager = MagicMock(loop=closed)

        handover.hand_over(EVENT)

        handover.manager.deliver_notification.assert_not_called()
        assert handover.stats == Counter({"dropped": 1})
        assert bridge_logs() == [
            error(
                "Error handing an event to the WebSocket manager: "
                "RuntimeError('Event loop is closed')"
            )
        ]


@pytest.fixture
def created_loops(mocker) -> List[asyncio.AbstractEventLoop]:
    """Every event loop the hand-over creates for itself (a spy: the loops
    are real)."""
    loops: List[asyncio.AbstractEventLoop] = []
    new_event_loop = asyncio.new_event_loop

    def create() -> asyncio.AbstractEventLoop:
        loops.append(new_event_loop())
        return loops[-1]

    mocker.patch.object(asyncio, "new_event_loop", side_effect=create)
    return loops


class TestWithoutAManagerLoop:
    @pytest.mark.parametrize(
        "make_manager",
        [
            pytest.param(MagicMock, id="loop-attribute-not-a-loop"),
            pytest.param(lambda: MagicMock(loop=None), id="loop-not-recorded-yet"),
            pytest.param(types.SimpleNamespace, id="no-loop-attribute"),
        ],
    )
    def test_the_event_is_broadcast_on_a_private_loop_then_closed(
        self, handover, created_loops, bridge_logs, make_manager
    ):
        manager = make_manager()
        manager.broadcast_event_from_notification = AsyncMock()
        handover.manager = manager

        handover.hand_over(EVENT)

        manager.broadcast_event_from_notification.assert_awaited_once_with(
            EVENT_TYPE, PAYLOAD
        )
        assert [loop.is_closed() for loop in created_loops] == [True]
        assert bridge_logs() == []

    def test_the_publisher_id_is_passed_when_there_is_one(
        self, handover, created_loops
    ):
        manager = types.SimpleNamespace(broadcast_event_from_notification=AsyncMock())
        handover.manager = manager

        handover.hand_over({**EVENT, "publisher_id": "network.host3"})

        manager.broadcast_event_from_notification.assert_awaited_once_with(
            EVENT_TYPE, PAYLOAD, "network.host3"
        )

    def test_a_failing_broadcast_is_logged_counted_and_swallowed(
        self, handover, created_loops, bridge_logs
    ):
        manager = types.SimpleNamespace(
            broadcast_event_from_notification=AsyncMock(side_effect=ValueError("boom"))
        )
        handover.manager = manager

        handover.hand_over(EVENT)
        handover.hand_over(EVENT)

        assert [loop.is_closed() for loop in created_loops] == [True, True]
        assert handover.stats == Counter({"dropped": 2})
        failed = "Error handing an event to the WebSocket manager: ValueError('boom')"
        assert bridge_logs() == [error(failed)] * 2


class Processing:
    def __init__(self, stop_after: int = 1) -> None:
        self.events: "EventBuffer[Any]" = EventBuffer(10)
        self.shutdown = FakeShutdown()
        self.handled: List[Any] = []
        self.stop_after = stop_after
        self.processor = LocalProcessor(self.events, self.handle, self.shutdown)

    def handle(self, event: Any) -> None:
        self.handled.append(event)
        if len(self.handled) >= self.stop_after:
            self.shutdown.set()
        if event.get("fail"):
            raise RuntimeError("boom")


class TestProcessing:
    def test_a_queued_event_is_handled_and_marked_done(self, bridge_logs):
        processing = Processing()
        processing.events.put(EVENT)

        processing.processor.run()

        assert processing.handled == [EVENT]
        assert processing.events.unfinished_tasks == 0
        assert bridge_logs() == [STARTED, STOPPED]

    def test_an_empty_queue_keeps_it_waiting_until_shutdown(self, mocker):
        processing = Processing()
        get = mocker.patch.object(
            processing.events, "get", side_effect=[queue.Empty(), EVENT]
        )
        mocker.patch.object(processing.events, "task_done")

        processing.processor.run()

        assert [c.kwargs for c in get.call_args_list] == [{"timeout": 1.0}] * 2
        assert processing.handled == [EVENT]

    def test_a_preset_shutdown_ends_it_without_reading(self, bridge_logs):
        processing = Processing()
        processing.events.put(EVENT)
        processing.shutdown.set()

        processing.processor.run()

        assert processing.handled == []
        assert bridge_logs() == [STARTED, STOPPED]

    def test_a_handling_error_is_logged_and_the_loop_continues(self, bridge_logs):
        processing = Processing(stop_after=2)
        processing.events.put({**EVENT, "fail": True})
        processing.events.put(EVENT)

        processing.processor.run()

        assert len(processing.handled) == 2
        assert processing.events.unfinished_tasks == 0
        assert bridge_logs() == [
            STARTED,
            error("Error processing queued event: boom"),
            STOPPED,
        ]

    def test_it_runs_in_the_processor_thread(self, threads):
        processing = Processing()

        processing.processor.start()

        [thread] = threads
        made: Any = processing.processor.thread
        assert made is thread
        assert made.name == "osism-event-bridge-processor"
        assert made.target == processing.processor.run
