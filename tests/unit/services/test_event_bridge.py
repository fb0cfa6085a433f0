"""Unit tests of osism.services.event_bridge (synchronous, no threads, no Redis)."""

import asyncio
import importlib.util
import json
import logging
import queue
import sys
import types
from collections import Counter
from unittest.mock import AsyncMock, MagicMock, call

import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry

from osism.services import event_bridge as event_bridge_module
from osism.services.event_bridge import EventBridge, event_bridge
from tests.unit.services.bridge_log_lines import LOGGER, debug, error, info, warning

CHANNEL = "osism:events"
EVENT_TYPE = "baremetal.node.power_set.end"
PAYLOAD = {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}
EVENT = {"event_type": EVENT_TYPE, "payload": PAYLOAD}
MESSAGE = (
    '{"event_type": "baremetal.node.power_set.end", '
    '"payload": {"ironic_object.data": {"name": "node1", "uuid": "abc-123"}}}'
)
SUBSCRIBED = (LOGGER, logging.INFO, "Subscribed to Redis channel osism:events")
SUBSCRIBER_STOPPED = (LOGGER, logging.INFO, "Redis subscriber stopped")
RESUBSCRIBED = (LOGGER, logging.INFO, "Subscribed to Redis channel osism:events again")
PROCESSOR_STARTED = (LOGGER, logging.INFO, "Event processor started")
PROCESSOR_STOPPED = (LOGGER, logging.INFO, "Event processor stopped")
GIVING_UP = (
    LOGGER,
    logging.ERROR,
    "Max Redis reconnection attempts reached, giving up",
)


def attempt(number, of, reason):
    return error(f"Redis subscriber error (attempt {number}/{of}): {reason}")


def redis_message(data):
    return {"type": "message", "pattern": None, "channel": CHANNEL, "data": data}


def feed(bridge, pubsub, *results):
    """Make ``pubsub.get_message`` return (or raise) each result in turn; once
    they are used up it sets the bridge's shutdown event and returns None."""
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
def default_env(monkeypatch):
    for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_CHANNEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pubsub(bridge, mocker):
    """The bridge's (mocked) pub/sub, with reconnect and retry wait stubbed."""
    mocker.patch.object(bridge, "_init_redis")
    mocker.patch.object(bridge._shutdown_event, "wait")
    return bridge._redis_subscriber


@pytest.fixture
def process(bridge, mocker):
    return mocker.patch.object(bridge, "_process_single_event")


@pytest.fixture
def created_loops(mocker):
    """Every event loop the bridge creates for itself."""
    loops = []
    new_event_loop = asyncio.new_event_loop

    def create():
        loop = new_event_loop()
        loops.append(loop)
        return loop

    mocker.patch(
        "osism.services.event_bridge.asyncio.new_event_loop", side_effect=create
    )
    return loops


class TestInitRedis:
    def test_connects_with_the_default_settings(
        self, default_env, redis_cls, redis_client, bridge_logs
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
        assert bridge._redis_tried is True
        assert bridge_logs() == [info("Connected to Redis at redis:6379/0")]

    def test_environment_variables_override_host_port_and_db(
        self, monkeypatch, redis_cls, bridge_logs
    ):
        monkeypatch.setenv("REDIS_HOST", "redis.example.org")
        monkeypatch.setenv("REDIS_PORT", "6380")
        monkeypatch.setenv("REDIS_DB", "3")

        EventBridge()

        redis_cls.assert_called_once_with(
            host="redis.example.org",
            port=6380,
            db=3,
            decode_responses=True,
            socket_connect_timeout=10,
            socket_timeout=None,
            health_check_interval=30,
        )
        assert bridge_logs() == [info("Connected to Redis at redis.example.org:6380/3")]

    def test_failed_ping_logs_an_error_and_leaves_no_client(
        self, default_env, redis_client, bridge_logs
    ):
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge = EventBridge()

        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None
        assert bridge._redis_tried is True
        redis_client.pubsub.assert_not_called()
        assert bridge_logs() == [error("Failed to connect to Redis: refused")]

    def test_failed_reconnect_drops_the_previous_client_and_subscriber(
        self, bridge, redis_client, bridge_logs
    ):
        assert bridge._redis_subscriber is not None
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None
        assert bridge_logs() == [error("Failed to connect to Redis: refused")]

    def test_without_the_redis_library_it_warns_and_uses_the_local_queue(
        self, mocker, redis_cls, bridge_logs
    ):
        mocker.patch("osism.services.event_bridge.REDIS_AVAILABLE", False)

        bridge = EventBridge()

        redis_cls.assert_not_called()
        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None
        assert bridge._redis_tried is True
        assert bridge_logs() == [
            warning("Redis library not available, using the local event queue")
        ]

    def test_a_new_bridge_starts_idle_with_default_retry_settings(self, bridge):
        assert bridge._websocket_manager is None
        assert bridge._subscriber_thread is None
        assert bridge._processor_thread is None
        assert not bridge._shutdown_event.is_set()
        assert bridge._event_queue.empty()
        assert bridge.max_retries == 5
        assert bridge.retry_delay == 1.0
        assert bridge.restart_max_delay == 5.0
        assert bridge.subscriber_wait == 10.0
        assert bridge.stats == Counter()

    def test_retry_settings_come_from_the_environment(self, redis_cls, monkeypatch):
        monkeypatch.setenv("REDIS_MAX_RETRIES", "3")
        monkeypatch.setenv("REDIS_RETRY_DELAY", "0.25")
        monkeypatch.setenv("REDIS_RESTART_MAX_DELAY", "2")
        monkeypatch.setenv("REDIS_SUBSCRIBER_WAIT", "0")
        monkeypatch.setenv("REDIS_BUFFER_SIZE", "7")

        bridge = EventBridge()

        assert (bridge.max_retries, bridge.retry_delay) == (3, 0.25)
        assert (bridge.restart_max_delay, bridge.subscriber_wait) == (2.0, 0.0)
        assert bridge._event_queue.maxsize == bridge._pending.maxsize == 7

    def test_connect_false_defers_redis_until_first_use(self, redis_cls):
        bridge = EventBridge(connect=False)

        redis_cls.assert_not_called()
        assert bridge._redis_tried is False
        assert bridge._redis_client is None
        assert bridge._redis_subscriber is None


class TestConnectingSafely:
    def test_the_client_is_not_visible_before_its_ping_succeeded(self, redis_cls):
        bridge = EventBridge(connect=False)
        seen = []
        redis_cls.return_value.ping.side_effect = lambda: seen.append(
            (bridge._redis_client, bridge._redis_subscriber)
        )

        bridge._init_redis()

        assert seen == [(None, None)]
        assert bridge._redis_client is redis_cls.return_value
        assert bridge._redis_subscriber is redis_cls.return_value.pubsub.return_value

    def test_redis_py_retries_are_off_before_the_first_ping(self, redis_cls):
        client = redis_cls.return_value
        steps = []
        client.set_retry.side_effect = lambda retry: steps.append(retry)
        client.ping.side_effect = lambda: steps.append("ping")

        EventBridge()

        [retry, ping] = steps
        assert ping == "ping"
        assert isinstance(retry, Retry)
        assert retry.get_retries() == 0
        assert isinstance(retry._backoff, NoBackoff)

    def test_a_connection_attempt_holds_the_lock_throughout(self, redis_cls):
        bridge = EventBridge(connect=False)
        steps = []
        bridge._redis_lock = MagicMock()
        bridge._redis_lock.__enter__.side_effect = lambda: steps.append("lock")
        bridge._redis_lock.__exit__.side_effect = lambda *exc: steps.append("unlock")

        def connect(**kwargs):
            steps.append("connect")
            return MagicMock()

        redis_cls.side_effect = connect

        bridge._init_redis()

        assert steps == ["lock", "connect", "unlock"]

    def test_the_lock_is_reentrant(self):
        lock = EventBridge(connect=False)._redis_lock

        with lock:
            assert lock.acquire(blocking=False)
            lock.release()


class TestAttachOrder:
    def test_the_local_processor_starts_before_redis_is_tried(self, mocker):
        bridge = EventBridge(connect=False)
        steps = []
        mocker.patch.object(
            bridge, "_start_processor_thread", side_effect=lambda: steps.append("p")
        )
        mocker.patch.object(
            bridge, "_init_redis", side_effect=lambda: steps.append("redis")
        )

        bridge.set_websocket_manager(MagicMock())

        assert steps == ["p", "redis"]


class TestLazyConnection:
    def test_add_event_tries_redis_exactly_once_on_first_use(
        self, redis_cls, redis_client
    ):
        redis_client.publish.return_value = 1
        bridge = EventBridge(connect=False)

        bridge.add_event(EVENT_TYPE, PAYLOAD)
        bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_cls.assert_called_once()
        assert bridge._redis_tried is True
        assert redis_client.publish.call_args_list == [call(CHANNEL, MESSAGE)] * 2

    def test_set_websocket_manager_tries_redis_exactly_once_on_first_use(
        self, redis_cls, redis_client, starters
    ):
        start_subscriber, _ = starters
        bridge = EventBridge(connect=False)

        bridge.set_websocket_manager(MagicMock())
        bridge.set_websocket_manager(MagicMock())

        redis_cls.assert_called_once()
        assert bridge._redis_client is redis_client
        assert start_subscriber.call_count == 2

    def test_a_failed_first_attempt_is_not_repeated_on_later_events(
        self, redis_cls, redis_client
    ):
        redis_client.ping.side_effect = ConnectionError("refused")
        bridge = EventBridge(connect=False)

        bridge.add_event(EVENT_TYPE, PAYLOAD)
        bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_cls.assert_called_once()
        assert drain(bridge) == [EVENT, EVENT]


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
        assert bridge_logs() == [info("WebSocket manager attached to the event bridge")]

    def test_without_redis_only_the_processor_starts(self, offline_bridge, starters):
        start_subscriber, start_processor = starters
        manager = MagicMock()

        offline_bridge.set_websocket_manager(manager)

        assert offline_bridge._websocket_manager is manager
        start_subscriber.assert_not_called()
        start_processor.assert_called_once_with()

    def test_a_running_subscriber_is_not_started_again(self, bridge, starters):
        start_subscriber, start_processor = starters
        bridge._subscriber_thread = MagicMock()

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_not_called()
        start_processor.assert_called_once_with()

    def test_a_live_processor_is_not_started_again(self, bridge, starters):
        start_subscriber, start_processor = starters
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = True

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_called_once_with()
        start_processor.assert_not_called()

    def test_a_dead_processor_is_started_again(self, bridge, starters):
        _, start_processor = starters
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = False

        bridge.set_websocket_manager(MagicMock())

        start_processor.assert_called_once_with()


class TestStartThreads:
    def test_start_redis_subscriber_runs_the_subscriber_loop_in_a_daemon_thread(
        self, bridge, mocker
    ):
        thread_cls = mocker.patch("osism.services.event_bridge.threading.Thread")

        bridge._start_redis_subscriber()

        thread_cls.assert_called_once_with(
            target=bridge._supervise_subscriber,
            name="osism-event-bridge-subscriber",
            daemon=True,
        )
        thread_cls.return_value.start.assert_called_once_with()
        assert bridge._subscriber_thread is thread_cls.return_value
        assert bridge._processor_thread is None

    def test_start_processor_thread_runs_the_processor_in_a_daemon_thread(
        self, bridge, mocker
    ):
        thread_cls = mocker.patch("osism.services.event_bridge.threading.Thread")

        bridge._start_processor_thread()

        thread_cls.assert_called_once_with(
            target=bridge._process_events,
            name="osism-event-bridge-processor",
            daemon=True,
        )
        thread_cls.return_value.start.assert_called_once_with()
        assert bridge._processor_thread is thread_cls.return_value
        assert bridge._subscriber_thread is None


class TestAddEvent:
    def test_publishes_the_event_as_json_on_the_osism_events_channel(
        self, bridge, redis_client, bridge_logs
    ):
        redis_client.publish.return_value = 1

        bridge.add_event(EVENT_TYPE, PAYLOAD)
        bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert redis_client.publish.call_args_list == [call(CHANNEL, MESSAGE)] * 2
        published = info(f"Published event {EVENT_TYPE} to Redis (1 subscribers)")
        assert bridge_logs() == [published, published]
        assert bridge.stats == Counter({"published": 2})
        assert bridge._event_queue.empty()

    def test_a_publisher_id_travels_with_the_event(self, bridge, redis_client):
        redis_client.publish.return_value = 1

        bridge.add_event(EVENT_TYPE, PAYLOAD, publisher_id="ironic-conductor.host1")

        (channel, message), _ = redis_client.publish.call_args
        assert channel == CHANNEL
        assert json.loads(message) == {
            **EVENT,
            "publisher_id": "ironic-conductor.host1",
        }

    def test_publish_without_subscribers_warns_and_keeps_the_event_for_later(
        self, bridge, redis_client, bridge_logs, start_reconnector
    ):
        redis_client.publish.return_value = 0

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        redis_client.publish.assert_called_once_with(CHANNEL, MESSAGE)
        assert bridge_logs() == [
            warning(
                f"No Redis subscribers received event {EVENT_TYPE} "
                "(is the API running?)"
            ),
            debug(f"Queued event {EVENT_TYPE} locally"),
        ]
        assert bridge.stats == Counter({"published": 1, "queued_locally": 1})
        assert drain(bridge) == [EVENT]
        start_reconnector.assert_called_once_with()

    def test_publish_failure_reconnects_and_publishes_again(
        self, bridge, redis_client, mocker, bridge_logs
    ):
        init_redis = mocker.patch.object(bridge, "_init_redis")
        redis_client.publish.side_effect = [ConnectionError("reset"), 1] * 2

        bridge.add_event(EVENT_TYPE, PAYLOAD)
        bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert init_redis.call_args_list == [call()] * 2
        assert redis_client.publish.call_args_list == [call(CHANNEL, MESSAGE)] * 4
        per_event = [
            error(f"Failed to publish event {EVENT_TYPE} to Redis: reset"),
            info(f"Published event {EVENT_TYPE} to Redis after reconnect"),
        ]
        assert bridge_logs() == per_event * 2
        assert bridge.stats == Counter({"published": 2})
        assert bridge._event_queue.empty()

    def test_publish_failure_falls_back_to_local_queue_when_reconnect_fails(
        self, bridge, redis_client, mocker, bridge_logs
    ):
        def reconnect_fails():
            bridge._redis_client = None

        init_redis = mocker.patch.object(
            bridge, "_init_redis", side_effect=reconnect_fails
        )
        redis_client.publish.side_effect = ConnectionError("reset")

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        init_redis.assert_called_once_with()
        redis_client.publish.assert_called_once_with(CHANNEL, MESSAGE)
        assert drain(bridge) == [EVENT]
        assert bridge.stats == Counter({"queued_locally": 1})
        assert bridge_logs() == [
            error(f"Failed to publish event {EVENT_TYPE} to Redis: reset"),
            debug(f"Queued event {EVENT_TYPE} locally"),
        ]

    def test_publish_failure_after_reconnect_falls_back_to_local_queue(
        self, bridge, redis_client, mocker, bridge_logs
    ):
        mocker.patch.object(bridge, "_init_redis")
        redis_client.publish.side_effect = [
            ConnectionError("reset"),
            ConnectionError("still down"),
        ]

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert redis_client.publish.call_args_list == [call(CHANNEL, MESSAGE)] * 2
        assert drain(bridge) == [EVENT]
        assert bridge.stats == Counter({"queued_locally": 1})
        assert bridge_logs() == [
            error(f"Failed to publish event {EVENT_TYPE} to Redis: reset"),
            error(
                f"Failed to publish event {EVENT_TYPE} to Redis after reconnect: "
                "still down"
            ),
            debug(f"Queued event {EVENT_TYPE} locally"),
        ]

    def test_publish_failure_with_redis_gone_reconnects_for_real_and_queues(
        self, bridge, redis_cls, redis_client, bridge_logs
    ):
        redis_client.publish.side_effect = ConnectionError("reset")
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge.add_event(EVENT_TYPE, PAYLOAD)

        # One client for the bridge's life: reconnecting pings it again.
        redis_cls.assert_called_once()
        assert redis_client.ping.call_count == 2
        assert bridge._redis_client is None
        assert drain(bridge) == [EVENT]
        assert bridge_logs() == [
            error(f"Failed to publish event {EVENT_TYPE} to Redis: reset"),
            error("Failed to connect to Redis: refused"),
            debug(f"Queued event {EVENT_TYPE} locally"),
        ]

    def test_without_redis_events_go_straight_to_the_local_queue(
        self, offline_bridge, redis_client, bridge_logs
    ):
        other = {"event_type": "compute.instance.update", "payload": {"a": 1}}

        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)
        offline_bridge.add_event(other["event_type"], other["payload"])

        redis_client.publish.assert_not_called()
        assert drain(offline_bridge) == [EVENT, other]
        assert offline_bridge.stats == Counter({"queued_locally": 2})
        assert bridge_logs() == [
            debug(f"Queued event {EVENT_TYPE} locally"),
            debug("Queued event compute.instance.update locally"),
        ]

    def test_a_full_local_queue_drops_the_event_with_a_warning(
        self, offline_bridge, mocker, bridge_logs
    ):
        mocker.patch.object(
            offline_bridge._event_queue, "put_nowait", side_effect=queue.Full
        )

        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)
        offline_bridge.add_event(EVENT_TYPE, PAYLOAD)

        assert offline_bridge.stats == Counter({"dropped": 2})
        full = warning(f"Local event queue full, dropping event {EVENT_TYPE}")
        assert bridge_logs() == [full, full]

    def test_a_payload_that_is_not_json_is_dropped_without_reconnecting(
        self, bridge, redis_cls, redis_client, bridge_logs
    ):
        payload = {"when": object()}

        bridge.add_event(EVENT_TYPE, payload)
        bridge.add_event(EVENT_TYPE, payload)

        redis_client.publish.assert_not_called()
        redis_cls.assert_called_once()
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"dropped": 2})
        dropped = error(
            f"Error adding event {EVENT_TYPE}: "
            "Object of type object is not JSON serializable"
        )
        assert bridge_logs() == [dropped, dropped]


class TestRedisSubscriberLoop:
    def test_without_subscriber_it_logs_an_error_and_returns_at_once(
        self, offline_bridge, bridge_logs
    ):
        offline_bridge._redis_subscriber_loop()

        assert bridge_logs() == [
            error("Redis subscriber not initialised, not subscribing")
        ]

    def test_subscribes_once_reads_with_a_timeout_and_closes_on_shutdown(
        self, bridge, pubsub, bridge_logs
    ):
        feed(bridge, pubsub)

        bridge._redis_subscriber_loop()

        pubsub.subscribe.assert_called_once_with(CHANNEL)
        assert pubsub.get_message.call_args_list == [call(timeout=1.0)]
        pubsub.close.assert_called_once_with()
        assert bridge_logs() == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_read_timeouts_keep_the_loop_reading_until_shutdown(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        feed(bridge, pubsub, None, None)

        bridge._redis_subscriber_loop()

        assert pubsub.get_message.call_args_list == [call(timeout=1.0)] * 3
        process.assert_not_called()
        bridge._shutdown_event.wait.assert_not_called()
        assert bridge.stats == Counter()
        assert bridge_logs() == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_a_message_is_handed_to_the_websocket_manager(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        feed(bridge, pubsub, redis_message(MESSAGE))

        bridge._redis_subscriber_loop()

        process.assert_called_once_with(EVENT)
        assert bridge._event_queue.empty()
        assert bridge_logs() == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_entries_other_than_messages_are_ignored(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        feed(bridge, pubsub, {"type": "subscribe", "channel": CHANNEL, "data": 1})

        bridge._redis_subscriber_loop()

        process.assert_not_called()
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter()
        assert bridge_logs() == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_without_websocket_manager_a_message_goes_to_the_local_queue(
        self, bridge, pubsub, process
    ):
        feed(bridge, pubsub, redis_message(MESSAGE))

        bridge._redis_subscriber_loop()

        process.assert_not_called()
        assert drain(bridge) == [EVENT]

    def test_invalid_json_is_logged_counted_and_skipped(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        feed(
            bridge,
            pubsub,
            redis_message("not json"),
            redis_message("{"),
            redis_message(MESSAGE),
        )

        bridge._redis_subscriber_loop()

        process.assert_called_once_with(EVENT)
        assert bridge.stats == Counter({"invalid": 2})
        assert bridge_logs() == [
            SUBSCRIBED,
            error(
                "Failed to decode Redis message as JSON: "
                "Expecting value: line 1 column 1 (char 0)"
            ),
            error(
                "Failed to decode Redis message as JSON: "
                "Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)"
            ),
            SUBSCRIBER_STOPPED,
        ]

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            ("[1, 2]", "expected a JSON object, got list"),
            ('"text"', "expected a JSON object, got str"),
            ('{"payload": {}}', "missing or non-string 'event_type'"),
            ('{"event_type": 1, "payload": {}}', "missing or non-string 'event_type'"),
            ('{"event_type": "x"}', "missing or non-object 'payload'"),
            ('{"event_type": "x", "payload": []}', "missing or non-object 'payload'"),
        ],
    )
    def test_json_that_is_not_an_event_is_logged_counted_and_skipped(
        self, bridge, pubsub, process, bridge_logs, data, reason
    ):
        feed(bridge, pubsub, redis_message(data), redis_message(data))

        bridge._redis_subscriber_loop()

        process.assert_not_called()
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"invalid": 2})
        skipped = error(f"Skipping Redis message that is not an event: {reason}")
        assert bridge_logs() == [SUBSCRIBED, skipped, skipped, SUBSCRIBER_STOPPED]

    def test_a_failing_hand_over_is_logged_and_the_loop_continues(
        self, bridge, pubsub, process, bridge_logs
    ):
        bridge._websocket_manager = MagicMock()
        process.side_effect = [RuntimeError("boom"), RuntimeError("boom"), None]
        feed(bridge, pubsub, *[redis_message(MESSAGE)] * 3)

        bridge._redis_subscriber_loop()

        assert process.call_args_list == [call(EVENT)] * 3
        bridge._init_redis.assert_not_called()
        assert bridge.stats == Counter(dropped=2)
        assert bridge_logs() == [
            SUBSCRIBED,
            error("Error processing Redis event: boom"),
            error("Error processing Redis event: boom"),
            SUBSCRIBER_STOPPED,
        ]

    def test_a_read_error_waits_the_retry_delay_reconnects_and_resubscribes(
        self, bridge, pubsub, mocker, bridge_logs
    ):
        new_pubsub = MagicMock()
        steps = []
        bridge._shutdown_event.wait.side_effect = lambda delay: steps.append("wait")

        def reconnect():
            steps.append("reconnect")
            bridge._redis_subscriber = new_pubsub

        bridge._init_redis.side_effect = reconnect
        feed(bridge, pubsub, ConnectionError("lost"))
        feed(bridge, new_pubsub)

        bridge._redis_subscriber_loop()

        bridge._shutdown_event.wait.assert_called_once_with(1.0)
        bridge._init_redis.assert_called_once_with()
        assert steps == ["wait", "reconnect"]
        pubsub.subscribe.assert_called_once_with(CHANNEL)
        new_pubsub.subscribe.assert_called_once_with(CHANNEL)
        assert new_pubsub.get_message.call_args_list == [call(timeout=1.0)]
        new_pubsub.close.assert_called_once_with()
        assert bridge.stats == Counter({"redis_errors": 1})
        assert bridge_logs() == [
            SUBSCRIBED,
            attempt(1, 5, "lost"),
            RESUBSCRIBED,
            SUBSCRIBER_STOPPED,
        ]

    def test_five_consecutive_read_errors_give_up_after_four_reconnects(
        self, bridge, pubsub, bridge_logs
    ):
        feed(bridge, pubsub, *[ConnectionError("lost")] * 5)

        bridge._redis_subscriber_loop()

        assert pubsub.get_message.call_count == 5
        assert bridge._shutdown_event.wait.call_args_list == [call(1.0)] * 4
        assert bridge._init_redis.call_count == 4
        assert pubsub.subscribe.call_args_list == [call(CHANNEL)] * 5
        assert not bridge._shutdown_event.is_set()
        pubsub.close.assert_called_once_with()
        assert bridge.stats == Counter({"redis_errors": 5})
        assert bridge_logs() == [
            SUBSCRIBED,
            *[
                line
                for n in range(1, 5)
                for line in (attempt(n, 5, "lost"), RESUBSCRIBED)
            ],
            attempt(5, 5, "lost"),
            GIVING_UP,
            SUBSCRIBER_STOPPED,
        ]

    def test_a_successful_read_resets_the_retry_count(
        self, bridge, pubsub, bridge_logs
    ):
        failures = [ConnectionError("lost")] * 4
        feed(bridge, pubsub, *failures, None, *failures)

        bridge._redis_subscriber_loop()

        assert pubsub.get_message.call_count == 10
        assert bridge._shutdown_event.wait.call_args_list == [call(1.0)] * 8
        assert bridge._init_redis.call_count == 8
        assert bridge.stats == Counter({"redis_errors": 8})
        attempts = [
            line for n in range(1, 5) for line in (attempt(n, 5, "lost"), RESUBSCRIBED)
        ]
        assert bridge_logs() == [
            SUBSCRIBED,
            *attempts,
            *attempts,
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
        assert bridge._init_redis.call_count == 1
        assert bridge_logs() == [
            SUBSCRIBED,
            attempt(1, 2, "lost"),
            RESUBSCRIBED,
            attempt(2, 2, "lost"),
            GIVING_UP,
            SUBSCRIBER_STOPPED,
        ]

    def test_an_error_while_shutting_down_ends_the_loop_without_reconnecting(
        self, bridge, pubsub, bridge_logs
    ):
        def closed_under_us(timeout):
            bridge._shutdown_event.set()
            raise ConnectionError("closed")

        pubsub.get_message.side_effect = closed_under_us

        bridge._redis_subscriber_loop()

        assert pubsub.get_message.call_count == 1
        bridge._shutdown_event.wait.assert_not_called()
        bridge._init_redis.assert_not_called()
        pubsub.close.assert_called_once_with()
        assert bridge.stats == Counter()
        assert bridge_logs() == [SUBSCRIBED, SUBSCRIBER_STOPPED]

    def test_a_reconnect_without_subscriber_counts_further_failures(
        self, bridge, pubsub, bridge_logs
    ):
        def reconnect_fails():
            bridge._redis_subscriber = None

        bridge._init_redis.side_effect = reconnect_fails
        feed(bridge, pubsub, ConnectionError("lost"))

        bridge._redis_subscriber_loop()

        pubsub.subscribe.assert_called_once_with(CHANNEL)
        pubsub.close.assert_not_called()
        assert bridge._init_redis.call_count == 4
        assert bridge.stats == Counter({"redis_errors": 5})
        no_subscriber = "not connected to Redis"
        assert bridge_logs() == [
            SUBSCRIBED,
            attempt(1, 5, "lost"),
            *[attempt(n, 5, no_subscriber) for n in range(2, 6)],
            GIVING_UP,
            SUBSCRIBER_STOPPED,
        ]

    def test_a_failing_close_is_logged_at_debug_level_and_swallowed(
        self, bridge, pubsub, bridge_logs
    ):
        pubsub.close.side_effect = OSError("gone")
        feed(bridge, pubsub)

        bridge._redis_subscriber_loop()

        pubsub.close.assert_called_once_with()
        assert bridge_logs() == [
            SUBSCRIBED,
            debug("Closing the Redis subscriber failed: gone"),
            SUBSCRIBER_STOPPED,
        ]


class TestProcessSingleEvent:
    def test_without_websocket_manager_the_event_is_dropped_with_a_warning(
        self, bridge, bridge_logs
    ):
        bridge._process_single_event(EVENT)
        bridge._process_single_event(EVENT)

        assert bridge.stats["dropped"] == 2
        assert (
            bridge_logs()
            == [warning("No WebSocket manager available, dropping event")] * 2
        )

    def test_with_a_manager_loop_the_event_is_scheduled_onto_that_loop(
        self, bridge, bridge_logs
    ):
        loop = asyncio.new_event_loop()
        try:
            manager = MagicMock()
            manager.loop = loop
            bridge._websocket_manager = manager

            bridge._process_single_event(EVENT)

            manager.enqueue_notification.assert_not_called()
            loop.run_until_complete(asyncio.sleep(0))
            manager.enqueue_notification.assert_called_once_with(
                EVENT_TYPE, PAYLOAD, None
            )
        finally:
            loop.close()
        manager.broadcast_event_from_notification.assert_not_called()
        assert bridge.stats == Counter()
        assert bridge_logs() == []

    @pytest.mark.parametrize(
        "publisher_id, handed_over",
        [
            pytest.param("nova-compute:host1", "nova-compute:host1", id="a-string"),
            pytest.param(None, None, id="null"),
            pytest.param(["not", "an", "id"], None, id="not-a-string-is-left-out"),
        ],
    )
    def test_the_publisher_id_is_handed_to_the_manager_with_the_event(
        self, bridge, publisher_id, handed_over
    ):
        loop = asyncio.new_event_loop()
        try:
            manager = MagicMock()
            manager.loop = loop
            bridge._websocket_manager = manager

            bridge._process_single_event({**EVENT, "publisher_id": publisher_id})
            loop.run_until_complete(asyncio.sleep(0))

            manager.enqueue_notification.assert_called_once_with(
                EVENT_TYPE, PAYLOAD, handed_over
            )
        finally:
            loop.close()

    def test_on_a_private_loop_the_publisher_id_is_passed_when_there_is_one(
        self, bridge, created_loops
    ):
        manager = types.SimpleNamespace(broadcast_event_from_notification=AsyncMock())
        bridge._websocket_manager = manager

        bridge._process_single_event({**EVENT, "publisher_id": "network.host3"})

        manager.broadcast_event_from_notification.assert_awaited_once_with(
            EVENT_TYPE, PAYLOAD, "network.host3"
        )

    def test_a_closed_manager_loop_drops_the_event_with_an_error(
        self, bridge, bridge_logs
    ):
        loop = asyncio.new_event_loop()
        loop.close()
        manager = MagicMock()
        manager.loop = loop
        bridge._websocket_manager = manager

        bridge._process_single_event(EVENT)
        bridge._process_single_event(EVENT)

        manager.enqueue_notification.assert_not_called()
        assert bridge.stats == Counter({"dropped": 2})
        dropped = error(
            "Error handing an event to the WebSocket manager: "
            "RuntimeError('Event loop is closed')"
        )
        assert bridge_logs() == [dropped, dropped]

    @pytest.mark.parametrize(
        "make_manager",
        [
            pytest.param(MagicMock, id="loop-attribute-not-a-loop"),
            pytest.param(lambda: MagicMock(loop=None), id="loop-not-recorded-yet"),
            pytest.param(types.SimpleNamespace, id="no-loop-attribute"),
        ],
    )
    def test_without_a_manager_loop_the_event_is_broadcast_on_a_private_loop(
        self, bridge, created_loops, bridge_logs, make_manager
    ):
        manager = make_manager()
        manager.broadcast_event_from_notification = AsyncMock()
        bridge._websocket_manager = manager

        bridge._process_single_event(EVENT)

        manager.broadcast_event_from_notification.assert_awaited_once_with(
            EVENT_TYPE, PAYLOAD
        )
        assert len(created_loops) == 1
        assert created_loops[0].is_closed()
        assert bridge.stats == Counter()
        assert bridge_logs() == []

    def test_a_failing_broadcast_is_logged_counted_and_swallowed(
        self, bridge, created_loops, bridge_logs
    ):
        manager = MagicMock()
        manager.broadcast_event_from_notification = AsyncMock(
            side_effect=ValueError("boom")
        )
        bridge._websocket_manager = manager

        bridge._process_single_event(EVENT)
        bridge._process_single_event(EVENT)

        assert manager.broadcast_event_from_notification.await_count == 2
        assert [loop.is_closed() for loop in created_loops] == [True, True]
        assert bridge.stats == Counter({"dropped": 2})
        dropped = error(
            "Error handing an event to the WebSocket manager: ValueError('boom')"
        )
        assert bridge_logs() == [dropped, dropped]


class TestProcessEvents:
    def test_a_queued_event_is_processed_and_marked_done(
        self, bridge, process, mocker, bridge_logs
    ):
        bridge._event_queue.put(EVENT)
        get = mocker.patch.object(
            bridge._event_queue, "get", wraps=bridge._event_queue.get
        )
        process.side_effect = lambda event: bridge._shutdown_event.set()

        bridge._process_events()

        process.assert_called_once_with(EVENT)
        assert get.call_args_list == [call(timeout=1.0)]
        assert bridge._event_queue.unfinished_tasks == 0
        assert bridge_logs() == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_an_empty_queue_keeps_the_processor_waiting_for_events(
        self, bridge, process, mocker, bridge_logs
    ):
        bridge._event_queue.put(EVENT)
        get = mocker.patch.object(
            bridge._event_queue, "get", side_effect=[queue.Empty(), EVENT]
        )
        process.side_effect = lambda event: bridge._shutdown_event.set()

        bridge._process_events()

        assert get.call_args_list == [call(timeout=1.0)] * 2
        process.assert_called_once_with(EVENT)
        assert bridge._event_queue.unfinished_tasks == 0
        assert bridge_logs() == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_an_empty_queue_ends_cleanly_once_shutdown_is_set(
        self, bridge, process, mocker, bridge_logs
    ):
        def empty(timeout):
            bridge._shutdown_event.set()
            raise queue.Empty

        get = mocker.patch.object(bridge._event_queue, "get", side_effect=empty)

        bridge._process_events()

        get.assert_called_once_with(timeout=1.0)
        process.assert_not_called()
        assert bridge_logs() == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_a_preset_shutdown_with_an_empty_queue_exits_without_reading(
        self, bridge, process, mocker, bridge_logs
    ):
        get = mocker.patch.object(bridge._event_queue, "get")
        bridge._shutdown_event.set()

        bridge._process_events()

        get.assert_not_called()
        process.assert_not_called()
        assert bridge_logs() == [PROCESSOR_STARTED, PROCESSOR_STOPPED]

    def test_a_processing_error_is_logged_and_the_loop_continues(
        self, bridge, process, bridge_logs
    ):
        other = {"event_type": "compute.instance.update", "payload": {}}
        bridge._event_queue.put(EVENT)
        bridge._event_queue.put(other)

        def second_call_stops(event):
            if process.call_count == 1:
                raise RuntimeError("boom")
            bridge._shutdown_event.set()

        process.side_effect = second_call_stops

        bridge._process_events()

        assert process.call_args_list == [call(EVENT), call(other)]
        assert bridge._event_queue.unfinished_tasks == 0
        assert bridge_logs() == [
            PROCESSOR_STARTED,
            error("Error processing queued event: boom"),
            PROCESSOR_STOPPED,
        ]


class TestShutdown:
    def test_joins_the_subscriber_before_closing_it_then_joins_the_processor(
        self, bridge, bridge_logs
    ):
        steps = MagicMock()
        subscriber_thread = steps.subscriber_thread
        processor_thread = steps.processor_thread
        pubsub = steps.pubsub
        subscriber_thread.is_alive.return_value = True
        processor_thread.is_alive.return_value = True
        bridge._subscriber_thread = subscriber_thread
        bridge._processor_thread = processor_thread
        bridge._redis_subscriber = pubsub

        bridge.shutdown()

        assert bridge._shutdown_event.is_set()
        assert steps.mock_calls == [
            call.subscriber_thread.is_alive(),
            call.subscriber_thread.join(timeout=5.0),
            call.pubsub.close(),
            call.processor_thread.is_alive(),
            call.processor_thread.join(timeout=5.0),
        ]
        assert bridge_logs() == [info("Shutting down the event bridge")]

    def test_finished_threads_are_not_joined(self, bridge):
        bridge._subscriber_thread = MagicMock()
        bridge._subscriber_thread.is_alive.return_value = False
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = False

        bridge.shutdown()

        bridge._subscriber_thread.join.assert_not_called()
        bridge._processor_thread.join.assert_not_called()
        bridge._redis_subscriber.close.assert_called_once_with()
        assert bridge._shutdown_event.is_set()

    def test_a_bridge_without_threads_or_redis_just_sets_the_shutdown_event(
        self, offline_bridge, bridge_logs
    ):
        offline_bridge.shutdown()

        assert offline_bridge._shutdown_event.is_set()
        assert bridge_logs() == [info("Shutting down the event bridge")]

    def test_a_failing_close_is_logged_and_shutdown_continues(
        self, bridge, bridge_logs
    ):
        bridge._redis_subscriber.close.side_effect = OSError("gone")
        bridge._processor_thread = MagicMock()
        bridge._processor_thread.is_alive.return_value = True

        bridge.shutdown()

        bridge._processor_thread.join.assert_called_once_with(timeout=5.0)
        assert bridge_logs() == [
            info("Shutting down the event bridge"),
            error("Error closing the Redis subscriber: gone"),
        ]


class TestChannel:
    def test_the_channel_defaults_to_osism_events(self, default_env, redis_cls):
        assert EventBridge().channel == "osism:events"
        assert EventBridge(connect=False).channel == "osism:events"

    def test_redis_channel_sets_where_events_are_published_and_read(
        self, monkeypatch, redis_cls, redis_client, mocker
    ):
        monkeypatch.setenv("REDIS_CHANNEL", "cloud-a:events")
        bridge = EventBridge()
        redis_client.publish.return_value = 1
        bridge.add_event("x", {})
        subscriber = redis_client.pubsub.return_value
        subscriber.get_message.side_effect = lambda timeout: (
            bridge._shutdown_event.set()
        )

        bridge._redis_subscriber_loop()

        redis_client.publish.assert_called_once_with(
            "cloud-a:events", '{"event_type": "x", "payload": {}}'
        )
        subscriber.subscribe.assert_called_once_with("cloud-a:events")


class TestHealth:
    def test_a_connected_bridge_reports_redis_mode(self, bridge):
        bridge.stats.update(published=2)
        bridge._event_queue.put_nowait({"event_type": "x", "payload": {}})

        assert bridge.health() == {
            "mode": "redis",
            "redis_connected": True,
            "subscriber_alive": False,
            "channel": "osism:events",
            "local_queue": 1,
            "buffered": 1,
            "outage": None,
            "counters": {"published": 2},
        }

    def test_an_offline_bridge_reports_embedded_mode(self, offline_bridge):
        health = offline_bridge.health()

        assert (health["mode"], health["redis_connected"]) == ("embedded", False)

    @pytest.mark.parametrize("alive", [True, False])
    def test_subscriber_alive_follows_the_thread(self, bridge, alive):
        bridge._subscriber_thread = MagicMock()
        bridge._subscriber_thread.is_alive.return_value = alive

        assert bridge.health()["subscriber_alive"] is alive


class TestModuleImport:
    def test_the_singleton_was_made_without_connecting(self):
        assert isinstance(event_bridge, EventBridge)
        assert event_bridge._redis_tried is False
        assert event_bridge._redis_client is None
        assert event_bridge._redis_subscriber is None
        assert event_bridge._subscriber_thread is None
        assert event_bridge._processor_thread is None

    def test_importing_opens_no_connection_and_starts_no_thread(
        self, redis_cls, mocker
    ):
        thread_cls = mocker.patch("osism.services.event_bridge.threading.Thread")
        spec = importlib.util.spec_from_file_location(
            event_bridge_module.__name__, event_bridge_module.__file__
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)

        spec.loader.exec_module(module)

        redis_cls.assert_not_called()
        thread_cls.assert_not_called()
        assert module.REDIS_CHANNEL == "osism:events"
        assert module.event_bridge._redis_tried is False
        assert module.event_bridge._redis_client is None


class TestLazyImport:
    """redis-py is loaded on first use; the helper that defers it."""

    def test_a_module_not_imported_yet_is_loaded_on_first_use(self, monkeypatch):
        # colorsys: a small standard module nothing here imports.
        monkeypatch.delitem(sys.modules, "colorsys", raising=False)

        module = event_bridge_module._import_lazily("colorsys")

        assert sys.modules["colorsys"] is module
        assert module.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)

    def test_a_module_imported_already_is_returned_as_it_is(self):
        assert event_bridge_module._import_lazily("json") is json
