"""The seed issue's test targets for ``EventBridge``, one by one.

Here the private names are the contract: the seed's tests patch
``_init_redis``, ``_process_single_event``, ``_start_redis_subscriber``,
``_start_processor_thread``, ``_event_queue.put_nowait`` and
``_shutdown_event.wait``, set ``_redis_subscriber`` and ``_redis_client``
to mocks and run ``_redis_subscriber_loop`` and ``_process_events`` in the
test's thread. These tests do the same, with ``redis.Redis`` patched by a
MagicMock as the seed says, so that tests written from the seed alone keep
passing. (The bridge's behaviour beyond the seed is tested through its
public methods in test_event_bridge.py and in tests/unit/services/bridge/.)

The only stand-in the seed does not name is ``threads``: a reconnector the
bridge starts on its own after an outage is made but not started.
"""

import asyncio
import importlib.util
import json
import logging
import queue
from collections import Counter
from unittest.mock import AsyncMock, MagicMock, call

import pytest

from osism.services import event_bridge as event_bridge_module
from osism.services.event_bridge import EventBridge, event_bridge
from tests.unit.services.bridge_log_lines import LOGGER, debug, error, info, warning

pytestmark = pytest.mark.usefixtures("redis_env", "threads")

CHANNEL = "osism:events"
EVENT_TYPE = "baremetal.node.power_set.end"
PAYLOAD = {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}
EVENT = {"event_type": EVENT_TYPE, "payload": PAYLOAD}
MESSAGE = json.dumps(EVENT)
SUBSCRIBED = (LOGGER, logging.INFO, "Subscribed to Redis channel osism:events")
SUBSCRIBER_STOPPED = (LOGGER, logging.INFO, "Redis subscriber stopped")
RESUBSCRIBED = (LOGGER, logging.INFO, "Subscribed to Redis channel osism:events again")
PROCESSOR_STARTED = (LOGGER, logging.INFO, "Event processor started")
PROCESSOR_STOPPED = (LOGGER, logging.INFO, "Event processor stopped")
GIVING_UP = error("Max Redis reconnection attempts reached, giving up")


def attempt(number, of, reason):
    return error(f"Redis subscriber error (attempt {number}/{of}): {reason}")


def redis_message(data):
    return {"type": "message", "pattern": None, "channel": CHANNEL, "data": data}


def feed(bridge, pubsub, *results):
    """``pubsub.get_message`` returns (or raises) each result in turn; then it
    sets the bridge's shutdown event and returns None."""
    pending = list(results)

    def get_message(timeout):
        if pending:
            result = pending.pop(0)
            if isinstance(result, BaseException):
                raise result
            return result
        bridge._shutdown_event.set()
        return None

    pubsub.get_message.side_effect = get_message


def drain(bridge):
    events = []
    while not bridge._event_queue.empty():
        events.append(bridge._event_queue.get_nowait())
    return events


@pytest.fixture
def redis_cls(mocker) -> MagicMock:
    """redis.Redis as the event bridge sees it; ping() succeeds."""
    return mocker.patch("osism.services.event_bridge.redis.Redis")


@pytest.fixture
def redis_client(redis_cls) -> MagicMock:
    return redis_cls.return_value


@pytest.fixture
def bridge(redis_cls) -> EventBridge:
    return EventBridge()


@pytest.fixture
def offline_bridge(redis_cls) -> EventBridge:
    redis_cls.return_value.ping.side_effect = ConnectionError("refused")
    return EventBridge()


@pytest.fixture
def starters(mocker):
    return (
        mocker.patch.object(EventBridge, "_start_redis_subscriber"),
        mocker.patch.object(EventBridge, "_start_processor_thread"),
    )


@pytest.fixture
def pubsub(bridge, mocker):
    """The bridge's (mocked) pub/sub, with reconnect and retry wait stubbed."""
    mocker.patch.object(bridge, "_init_redis")
    mocker.patch.object(bridge._shutdown_event, "wait")
    return bridge._redis_subscriber


@pytest.fixture
def process(bridge, mocker):
    return mocker.patch.object(bridge, "_process_single_event")


class TestInitRedis:
    def test_connects_with_the_default_settings(
        self, redis_cls, redis_client, bridge_logs
    ):
        bridge = EventBridge()

        redis_cls.assert_called_once_with(
            host="redis",
            port=6379,
            db=0,
            decode_responses=True,
            socket_connect_timeout=10,
            socket_timeout=None,
            health_check_interval=30,
        )
        redis_client.ping.assert_called_once_with()
        redis_client.pubsub.assert_called_once_with()
        assert bridge._redis_client is redis_client
        assert bridge._redis_subscriber is redis_client.pubsub.return_value
        assert bridge_logs() == [info("Connected to Redis at redis:6379/0")]

    def test_environment_variables_override_host_port_and_db(
        self, monkeypatch, redis_cls
    ):
        monkeypatch.setenv("REDIS_HOST", "redis.example.org")
        monkeypatch.setenv("REDIS_PORT", "6380")
        monkeypatch.setenv("REDIS_DB", "3")

        EventBridge()

        assert redis_cls.call_args.kwargs["host"] == "redis.example.org"
        assert redis_cls.call_args.kwargs["port"] == 6380
        assert redis_cls.call_args.kwargs["db"] == 3

    def test_a_failed_ping_logs_an_error_and_leaves_no_client(
        self, redis_client, bridge_logs
    ):
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge = EventBridge()

        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None
        redis_client.pubsub.assert_not_called()
        assert bridge_logs() == [error("Failed to connect to Redis: refused")]

    def test_a_failed_reconnect_drops_the_client_and_the_subscriber(
        self, bridge, redis_client
    ):
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None

    def test_without_the_redis_library_it_warns_and_uses_the_local_queue(
        self, mocker, redis_cls, bridge_logs
    ):
        mocker.patch("osism.services.event_bridge.REDIS_AVAILABLE", False)

        bridge = EventBridge()

        redis_cls.assert_not_called()
        assert bridge._redis_client is None
        assert bridge_logs() == [
            warning("Redis library not available, using the local event queue")
        ]

    def test_a_new_bridge_starts_idle_with_the_default_retry_settings(self, bridge):
        assert bridge._websocket_manager is None
        assert bridge._subscriber_thread is None
        assert bridge._processor_thread is None
        assert not bridge._shutdown_event.is_set()
        assert bridge._event_queue.empty()
        assert (bridge.max_retries, bridge.retry_delay) == (5, 1.0)
        assert bridge.channel == CHANNEL
        assert bridge.stats == Counter()

    def test_connect_false_defers_redis_until_first_use(self, redis_cls):
        bridge = EventBridge(connect=False)

        redis_cls.assert_not_called()
        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None


class TestSetWebsocketManager:
    def test_with_redis_it_stores_the_manager_and_starts_both_threads(
        self, bridge, starters, bridge_logs
    ):
        start_subscriber, start_processor = starters
        manager = MagicMock()

        bridge.set_websocket_manager(manager)

        assert bridge._websocket_manager is manager
        start_subscriber.assert_called_once_with()
        start_processor.assert_called_once_with()
        assert bridge_logs()[-1] == info(
            "WebSocket manager attached to the event bridge"
        )

    def test_without_a_redis_client_the_subscriber_is_not_started(
        self, bridge, starters
    ):
        start_subscriber, start_processor = starters
        bridge._redis_client = None

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_not_called()
        start_processor.assert_called_once_with()

    def test_a_running_subscriber_is_not_started_again(self, bridge, starters):
        start_subscriber, _ = starters
        bridge._subscriber_thread = MagicMock()

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_not_called()

    def test_a_live_processor_is_not_started_again(self, bridge, starters):
        _, start_processor = starters
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = True

        bridge.set_websocket_manager(MagicMock())

        start_processor.assert_not_called()


class TestAddEvent:
    def test_publishes_the_event_as_json_and_logs_it(
        self, bridge, redis_client, bridge_logs
    ):
        redis_client.publish.return_value = 1

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_client.publish.assert_called_once_with(CHANNEL, MESSAGE)
        assert bridge_logs()[-1] == info(
            f"Published event {EVENT_TYPE} to Redis (1 subscribers)"
        )
        assert all(level < logging.WARNING for _, level, _ in bridge_logs())

    def test_no_subscribers_is_warned_about(self, bridge, redis_client, bridge_logs):
        redis_client.publish.return_value = 0

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert (
            warning(
                f"No Redis subscribers received event {EVENT_TYPE} "
                "(is the API running?)"
            )
            in bridge_logs()
        )

    def test_a_failed_publish_reconnects_and_publishes_again(
        self, bridge, redis_client, mocker, bridge_logs
    ):
        init_redis = mocker.patch.object(bridge, "_init_redis")
        redis_client.publish.side_effect = [ConnectionError("reset"), 1]

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        init_redis.assert_called_once_with()
        assert redis_client.publish.call_args_list == [call(CHANNEL, MESSAGE)] * 2
        assert bridge_logs()[-1] == info(
            f"Published event {EVENT_TYPE} to Redis after reconnect"
        )
        assert bridge._event_queue.empty()

    def test_a_failed_publish_without_a_client_after_reconnecting_queues_locally(
        self, bridge, redis_client, mocker
    ):
        def reconnect_fails():
            bridge._redis_client = None

        mocker.patch.object(bridge, "_init_redis", side_effect=reconnect_fails)
        redis_client.publish.side_effect = ConnectionError("reset")

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_client.publish.assert_called_once_with(CHANNEL, MESSAGE)
        assert drain(bridge) == [EVENT]

    def test_without_redis_events_go_straight_to_the_local_queue(
        self, offline_bridge, redis_client
    ):
        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_client.publish.assert_not_called()
        assert drain(offline_bridge) == [EVENT]

    def test_a_full_local_queue_drops_the_event_with_a_warning(
        self, offline_bridge, mocker, bridge_logs
    ):
        mocker.patch.object(
            offline_bridge._event_queue, "put_nowait", side_effect=queue.Full
        )

        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)
        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert offline_bridge.stats == Counter({"dropped": 2})
        assert (
            bridge_logs()
            == [warning(f"Local event queue full, dropping event {EVENT_TYPE}")] * 2
        )

    def test_any_other_error_is_logged_and_swallowed(self, bridge, mocker, bridge_logs):
        mocker.patch(
            "osism.services.event_bridge.json.dumps", side_effect=ValueError("bad")
        )

        bridge.add_event(EVENT_TYPE, PAYLOAD)
        bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert bridge.stats == Counter({"dropped": 2})
        assert bridge_logs()[-1] == error(f"Error adding event {EVENT_TYPE}: bad")


class TestRedisSubscriberLoop:
    def test_without_a_subscriber_it_logs_an_error_and_returns(
        self, offline_bridge, bridge_logs
    ):
        offline_bridge._redis_subscriber_loop()

        assert bridge_logs()[-1] == error(
            "Redis subscriber not initialised, not subscribing"
        )

    def test_subscribes_once_and_reads_until_shutdown(
        self, bridge, pubsub, process, bridge_logs
    ):
        feed(bridge, pubsub, None, None)

        bridge._redis_subscriber_loop()

        pubsub.subscribe.assert_called_once_with(CHANNEL)
        assert pubsub.get_message.call_count == 3
        process.assert_not_called()
        assert bridge_logs()[-2:] == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_a_message_is_handed_to_the_websocket_manager(
        self, bridge, pubsub, process
    ):
        bridge._websocket_manager = MagicMock()
        feed(bridge, pubsub, redis_message(MESSAGE))

        bridge._redis_subscriber_loop()

        process.assert_called_once_with(EVENT)
        assert bridge._event_queue.empty()

    def test_without_a_websocket_manager_a_message_goes_to_the_local_queue(
        self, bridge, pubsub, process
    ):
        feed(bridge, pubsub, redis_message(MESSAGE))

        bridge._redis_subscriber_loop()

        process.assert_not_called()
        assert drain(bridge) == [EVENT]

    def test_invalid_json_is_logged_and_the_loop_continues(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        feed(bridge, pubsub, redis_message("not json"), redis_message(MESSAGE))

        bridge._redis_subscriber_loop()

        process.assert_called_once_with(EVENT)
        assert (
            error(
                "Failed to decode Redis message as JSON: "
                "Expecting value: line 1 column 1 (char 0)"
            )
            in bridge_logs()
        )

    def test_a_failing_hand_over_is_logged_and_the_loop_continues(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        process.side_effect = [RuntimeError("boom"), None]
        feed(bridge, pubsub, *[redis_message(MESSAGE)] * 2)

        bridge._redis_subscriber_loop()

        assert process.call_count == 2
        assert error("Error processing Redis event: boom") in bridge_logs()

    def test_a_read_error_waits_the_retry_delay_and_reconnects(
        self, bridge, pubsub, bridge_logs
    ):
        steps = []
        bridge._shutdown_event.wait.side_effect = lambda delay: steps.append("wait")
        bridge._init_redis.side_effect = lambda: steps.append("reconnect")
        feed(bridge, pubsub, ConnectionError("lost"))

        bridge._redis_subscriber_loop()

        bridge._shutdown_event.wait.assert_called_once_with(1.0)
        assert steps == ["wait", "reconnect"]
        assert bridge_logs()[-4:] == [
            SUBSCRIBED,
            attempt(1, 5, "lost"),
            RESUBSCRIBED,
            SUBSCRIBER_STOPPED,
        ]

    def test_five_consecutive_failures_give_up(self, bridge, pubsub, bridge_logs):
        feed(bridge, pubsub, *[ConnectionError("lost")] * 5)

        bridge._redis_subscriber_loop()

        assert bridge._init_redis.call_count == 4
        assert not bridge._shutdown_event.is_set()
        pubsub.close.assert_called_once_with()
        assert bridge_logs()[-3:] == [
            attempt(5, 5, "lost"),
            GIVING_UP,
            SUBSCRIBER_STOPPED,
        ]

    def test_retry_limit_and_delay_are_taken_from_the_instance(
        self, bridge, pubsub, bridge_logs
    ):
        bridge.max_retries = 2
        bridge.retry_delay = 0.25
        feed(bridge, pubsub, *[ConnectionError("lost")] * 2)

        bridge._redis_subscriber_loop()

        assert bridge._shutdown_event.wait.call_args_list == [call(0.25)]
        assert GIVING_UP in bridge_logs()

    def test_a_failing_close_is_swallowed(self, bridge, pubsub, bridge_logs):
        pubsub.close.side_effect = OSError("gone")
        feed(bridge, pubsub)

        bridge._redis_subscriber_loop()

        assert bridge_logs()[-2:] == [
            debug("Closing the Redis subscriber failed: gone"),
            SUBSCRIBER_STOPPED,
        ]


class TestProcessSingleEvent:
    def test_without_a_websocket_manager_it_warns(self, bridge, bridge_logs):
        bridge._process_single_event(EVENT)

        assert bridge_logs()[-1] == warning(
            "No WebSocket manager available, dropping event"
        )

    def test_the_managers_coroutine_is_awaited_with_type_and_payload(self, bridge):
        manager = MagicMock()
        manager.broadcast_event_from_notification = AsyncMock()
        bridge._websocket_manager = manager

        bridge._process_single_event(EVENT)

        manager.broadcast_event_from_notification.assert_awaited_once_with(
            EVENT_TYPE, PAYLOAD
        )

    def test_a_coroutine_that_raises_is_logged_and_swallowed(self, bridge, bridge_logs):
        manager = MagicMock()
        manager.broadcast_event_from_notification = AsyncMock(
            side_effect=ValueError("boom")
        )
        bridge._websocket_manager = manager

        bridge._process_single_event(EVENT)

        assert bridge_logs()[-1] == error(
            "Error handing an event to the WebSocket manager: ValueError('boom')"
        )

    def test_with_a_running_manager_loop_the_event_goes_onto_that_loop(self, bridge):
        loop = asyncio.new_event_loop()
        try:
            manager = MagicMock(loop=loop)
            bridge._websocket_manager = manager

            bridge._process_single_event(EVENT)
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            loop.close()

        manager.deliver_notification.assert_called_once_with(
            EVENT_TYPE, PAYLOAD, None, None, None
        )


class TestProcessEvents:
    def test_a_queued_event_is_processed_and_marked_done(
        self, bridge, process, bridge_logs
    ):
        bridge._event_queue.put(EVENT)
        process.side_effect = lambda event: bridge._shutdown_event.set()

        bridge._process_events()

        process.assert_called_once_with(EVENT)
        assert bridge._event_queue.unfinished_tasks == 0
        assert bridge_logs()[-2:] == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_an_empty_queue_keeps_it_waiting_until_shutdown(
        self, bridge, process, mocker
    ):
        def empty(timeout):
            bridge._shutdown_event.set()
            raise queue.Empty

        get = mocker.patch.object(bridge._event_queue, "get", side_effect=empty)

        bridge._process_events()

        get.assert_called_once_with(timeout=1.0)
        process.assert_not_called()

    def test_a_preset_shutdown_with_an_empty_queue_exits_cleanly(
        self, bridge, process, bridge_logs
    ):
        bridge._shutdown_event.set()

        bridge._process_events()

        process.assert_not_called()
        assert bridge_logs()[-2:] == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_a_processing_error_is_logged_and_the_loop_continues(
        self, bridge, process, bridge_logs
    ):
        bridge._event_queue.put(EVENT)
        bridge._event_queue.put(EVENT)

        def first_fails_second_stops(event):
            if process.call_count == 1:
                raise RuntimeError("boom")
            bridge._shutdown_event.set()

        process.side_effect = first_fails_second_stops

        bridge._process_events()

        assert process.call_count == 2
        assert error("Error processing queued event: boom") in bridge_logs()


class TestShutdown:
    def test_joins_the_threads_and_closes_the_subscriber(self, bridge, bridge_logs):
        steps = MagicMock()
        steps.subscriber_thread.is_alive.return_value = True
        steps.processor_thread.is_alive.return_value = True
        bridge._subscriber_thread = steps.subscriber_thread
        bridge._processor_thread = steps.processor_thread
        bridge._redis_subscriber = steps.pubsub

        bridge.shutdown()

        assert bridge._shutdown_event.is_set()
        assert steps.mock_calls == [
            call.subscriber_thread.is_alive(),
            call.subscriber_thread.join(timeout=5.0),
            call.pubsub.close(),
            call.processor_thread.is_alive(),
            call.processor_thread.join(timeout=5.0),
        ]

    @pytest.mark.parametrize("alive", [False, None])
    def test_threads_that_are_not_alive_are_not_joined(self, bridge, alive):
        subscriber_thread, processor_thread = MagicMock(), MagicMock()
        subscriber_thread.is_alive.return_value = alive
        processor_thread.is_alive.return_value = alive
        bridge._subscriber_thread = subscriber_thread
        bridge._processor_thread = processor_thread

        bridge.shutdown()

        subscriber_thread.join.assert_not_called()
        processor_thread.join.assert_not_called()

    def test_a_bridge_without_threads_shuts_down(self, offline_bridge, bridge_logs):
        offline_bridge.shutdown()

        assert offline_bridge._shutdown_event.is_set()
        assert bridge_logs()[-1] == info("Shutting down the event bridge")

    def test_shutting_down_twice_does_it_once(self, offline_bridge, bridge_logs):
        offline_bridge.shutdown()
        offline_bridge.shutdown()

        assert bridge_logs().count(info("Shutting down the event bridge")) == 1

    def test_a_failing_close_is_logged_and_shutdown_continues(
        self, bridge, bridge_logs
    ):
        bridge._redis_subscriber.close.side_effect = OSError("gone")
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = True

        bridge.shutdown()

        bridge._processor_thread.join.assert_called_once_with(timeout=5.0)
        assert error("Error closing the Redis subscriber: gone") in bridge_logs()


class TestModuleImport:
    def test_the_singleton_was_made_without_connecting(self):
        assert isinstance(event_bridge, EventBridge)
        assert event_bridge._redis_client is None
        assert event_bridge._redis_subscriber is None
        assert event_bridge._subscriber_thread is None
        assert event_bridge._processor_thread is None

    def test_importing_opens_no_connection_and_starts_no_thread(
        self, redis_cls, threads
    ):
        spec = importlib.util.spec_from_file_location(
            event_bridge_module.__name__, event_bridge_module.__file__
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)

        spec.loader.exec_module(module)

        redis_cls.assert_not_called()
        assert threads == []
        assert module.REDIS_CHANNEL == "osism:events"
        assert module.event_bridge._redis_client is None
