"""Unit tests of the event bridge's Redis outage handling (synchronous).

Thread bodies (_reconnect_loop, _supervise_subscriber) are called directly
and ended through ``_shutdown_event``; ``redis.Redis`` is patched, and so is
the clock the bridge reads (``time`` in the event_bridge module).
"""

import json
import logging
import threading
from collections import Counter
from typing import Any, Callable, Dict, List
from unittest.mock import MagicMock, call

import pytest

from osism.services import event_bridge as event_bridge_module
from osism.services.event_bridge import ORIGIN_KEY, EventBridge
from tests.unit.services.bridge_log_lines import LOGGER, debug, error, info, warning

# The real method: the autouse start_reconnector fixture patches it on the
# class for every test, after this module was imported.
START_RECONNECTOR = EventBridge._start_reconnector

CHANNEL = "osism:events"
# 2023-11-14T22:13:20Z
T0 = 1_700_000_000.0
T0_TEXT = "2023-11-14T22:13:20Z"
CONNECTED = (LOGGER, logging.INFO, "Connected to Redis at redis:6379/0")
REFUSED = (LOGGER, logging.ERROR, "Failed to connect to Redis: refused")
RECONNECTOR_STOPPED = (LOGGER, logging.DEBUG, "Reconnector stopped")
DISABLED = (
    LOGGER,
    logging.INFO,
    "Redis is disabled (REDIS_HOST is empty): events reach only this "
    "process's WebSocket clients",
)


def event(number: int) -> Dict[str, Any]:
    return {"event_type": f"compute.instance.update.{number}", "payload": {"n": number}}


def add(bridge: EventBridge, *events: Dict[str, Any]) -> None:
    for item in events:
        bridge.add_event(item["event_type"], item["payload"])


def published(*events: Dict[str, Any]) -> List[Any]:
    return [call(CHANNEL, json.dumps(item)) for item in events]


def subscribers_back(bridge: EventBridge, redis_client: Any, count: int = 1) -> None:
    """Redis counts as many subscribers as received the bridge's last event,
    so kept events are published without waiting for more."""
    bridge._receivers_seen = count
    redis_client.pubsub_numsub.return_value = [(CHANNEL, count)]


def contents(buffer: Any) -> List[Any]:
    """The items of an event buffer, head first, without taking them."""
    return list(buffer.queue)


def from_origin(bridge: EventBridge, item: Dict[str, Any]) -> Dict[str, Any]:
    return {**item, ORIGIN_KEY: bridge._origin}


def no_subscribers(item: Dict[str, Any]) -> Any:
    return warning(
        f"No Redis subscribers received event {item['event_type']} "
        "(is the API running?)"
    )


def queued_locally(item: Dict[str, Any]) -> Any:
    return debug(f"Queued event {item['event_type']} locally")


@pytest.fixture(autouse=True)
def default_env(monkeypatch):
    """The settings' defaults, whatever the environment of the test run."""
    for name in (
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_DB",
        "REDIS_CHANNEL",
        "REDIS_SOCKET_TIMEOUT",
        "REDIS_RETRY_DELAY",
        "REDIS_MAX_RETRIES",
        "REDIS_RESTART_MAX_DELAY",
        "REDIS_BUFFER_SIZE",
        "REDIS_SUBSCRIBER_WAIT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock(mocker) -> MagicMock:
    """The bridge's time module: wall clock at T0, monotonic clock at 100."""
    clock = mocker.patch.object(event_bridge_module, "time")
    clock.time.return_value = T0
    clock.monotonic.return_value = 100.0
    return clock


@pytest.fixture
def down_bridge(clock, redis_cls) -> EventBridge:
    """A bridge whose Redis refused the first connection at T0."""
    redis_cls.return_value.ping.side_effect = ConnectionError("refused")
    return EventBridge()


def fake_waits(mocker, bridge: EventBridge, clock: MagicMock) -> MagicMock:
    """Patch the bridge's shutdown-event wait: it returns False (not shut
    down) at once and moves the wall clock on by the time waited."""

    def wait(timeout=None):
        clock.time.return_value += timeout
        return False

    return mocker.patch.object(bridge._shutdown_event, "wait", side_effect=wait)


@pytest.fixture
def waits(bridge, clock, mocker) -> MagicMock:
    return fake_waits(mocker, bridge, clock)


@pytest.fixture
def down_waits(down_bridge, clock, mocker) -> MagicMock:
    return fake_waits(mocker, down_bridge, clock)


@pytest.fixture
def disabled(monkeypatch):
    monkeypatch.setenv("REDIS_HOST", "")


class TestOneClient:
    def test_redis_is_constructed_once_and_later_attempts_only_ping_it_again(
        self, bridge, redis_cls, redis_client
    ):
        redis_client.ping.side_effect = [ConnectionError("refused"), True]

        bridge._init_redis()
        bridge._init_redis()

        redis_cls.assert_called_once()
        assert redis_client.ping.call_count == 3
        assert bridge._redis_client is redis_client

    def test_a_client_whose_construction_failed_is_made_on_the_next_attempt(
        self, redis_cls, redis_client, clock, bridge_logs
    ):
        redis_cls.side_effect = [ValueError("bad URL"), redis_client]

        bridge = EventBridge()
        bridge._init_redis()

        assert redis_cls.call_count == 2
        assert bridge._redis_client is redis_client
        assert bridge_logs() == [
            error("Failed to connect to Redis: bad URL"),
            info("Redis is back after 0.0 s"),
            CONNECTED,
        ]

    def test_the_pool_gets_the_socket_timeout_and_the_constructor_keeps_none(
        self, monkeypatch, redis_cls, redis_client
    ):
        monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "2.5")
        redis_client.connection_pool.connection_kwargs = {"socket_timeout": None}

        EventBridge()

        assert redis_cls.call_args.kwargs["socket_timeout"] is None
        assert redis_client.connection_pool.connection_kwargs == {"socket_timeout": 2.5}

    def test_the_pool_socket_timeout_defaults_to_five_seconds(
        self, redis_cls, redis_client
    ):
        redis_client.connection_pool.connection_kwargs = {}

        EventBridge()

        assert redis_client.connection_pool.connection_kwargs == {"socket_timeout": 5.0}


class TestRedisDisabled:
    def test_an_empty_redis_host_disables_redis_with_an_info_log(
        self, disabled, redis_cls, bridge_logs
    ):
        bridge = EventBridge()

        redis_cls.assert_not_called()
        assert bridge._redis_client is None
        assert bridge_logs() == [DISABLED]
        health = bridge.health()
        assert (health["mode"], health["outage"]) == ("embedded", None)

    def test_events_go_to_the_local_queue_only_and_start_no_reconnector(
        self, disabled, redis_cls, start_reconnector
    ):
        bridge = EventBridge(connect=False)

        add(bridge, event(1), event(2))

        redis_cls.assert_not_called()
        assert contents(bridge._event_queue) == [event(1), event(2)]
        assert bridge.stats == Counter({"queued_locally": 2})
        start_reconnector.assert_not_called()
        assert bridge.health()["outage"] is None

    def test_with_a_manager_events_reach_local_clients_and_are_not_kept(
        self, disabled, redis_cls, start_reconnector
    ):
        bridge = EventBridge()
        bridge._websocket_manager = MagicMock()

        add(bridge, event(1))

        assert contents(bridge._event_queue) == [event(1)]
        assert bridge._pending.empty()
        assert bridge.stats == Counter({"queued_locally": 1})
        start_reconnector.assert_not_called()

    def test_attaching_a_manager_starts_neither_subscriber_nor_reconnector(
        self, disabled, redis_cls, start_reconnector, mocker
    ):
        start_subscriber = mocker.patch.object(EventBridge, "_start_redis_subscriber")
        mocker.patch.object(EventBridge, "_start_processor_thread")
        bridge = EventBridge(connect=False)

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_not_called()
        start_reconnector.assert_not_called()

    def test_shutdown_reports_no_unpublished_events_and_closes_no_client(
        self, disabled, redis_cls, bridge_logs
    ):
        bridge = EventBridge()
        add(bridge, event(1))

        bridge.shutdown()

        assert bridge_logs() == [
            DISABLED,
            queued_locally(event(1)),
            info("Shutting down the event bridge"),
        ]


ABSENT = info(
    "No Redis at redis:6379 (REDIS_HOST is not set; refused): running embedded, "
    "events reach only this process's WebSocket clients; Redis is used as soon "
    "as it answers"
)


@pytest.fixture
def attach_api_bridge(clock, redis_cls, starters) -> Callable[[], EventBridge]:
    """Makes an API process's bridge, without REDIS_HOST, and attaches it to a
    manager while nothing answers at the default Redis host."""
    redis_cls.return_value.ping.side_effect = ConnectionError("refused")

    def attach() -> EventBridge:
        bridge = EventBridge(connect=False)
        bridge.set_websocket_manager(MagicMock())
        return bridge

    return attach


class TestEmbeddedByDefault:
    """An API whose REDIS_HOST is not set and which finds no Redis at the
    default host runs embedded: the quick start, not an outage."""

    def test_it_is_said_once_at_info_level_and_health_shows_no_outage(
        self, attach_api_bridge, bridge_logs
    ):
        bridge = attach_api_bridge()
        bridge._init_redis()

        assert [r for r in bridge_logs() if r[1] >= logging.WARNING] == []
        assert bridge_logs().count(ABSENT) == 1
        assert debug("Still no Redis at the default host: refused") in bridge_logs()
        health = bridge.health()
        assert (health["mode"], health["outage"]) == ("embedded", None)

    def test_it_keeps_looking_for_redis(self, attach_api_bridge, start_reconnector):
        attach_api_bridge()

        start_reconnector.assert_called_once_with()

    def test_events_reach_local_clients_and_are_not_kept_for_redis(
        self, attach_api_bridge, bridge_logs
    ):
        bridge = attach_api_bridge()
        add(bridge, event(1))
        bridge.shutdown()

        assert contents(bridge._event_queue) == [event(1)]
        assert bridge._pending.empty()
        assert [r for r in bridge_logs() if r[1] >= logging.WARNING] == []

    def test_once_found_redis_is_used_and_losing_it_is_an_outage(
        self, attach_api_bridge, redis_client, bridge_logs
    ):
        bridge = attach_api_bridge()
        redis_client.ping.side_effect = None
        bridge._init_redis()
        redis_client.ping.side_effect = ConnectionError("refused")
        bridge._init_redis()

        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "refused"}
        assert bridge_logs()[-2:] == [CONNECTED, REFUSED]

    def test_a_configured_redis_host_that_does_not_answer_is_an_outage(
        self, attach_api_bridge, monkeypatch, bridge_logs
    ):
        monkeypatch.setenv("REDIS_HOST", "redis")

        bridge = attach_api_bridge()

        assert REFUSED in bridge_logs()
        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "refused"}

    def test_for_a_publisher_redis_is_never_optional(
        self, clock, redis_cls, bridge_logs
    ):
        redis_cls.return_value.ping.side_effect = ConnectionError("refused")

        bridge = EventBridge()

        assert bridge_logs() == [REFUSED]
        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "refused"}


class TestAfterShutdown:
    def test_init_redis_does_nothing_once_shutdown_is_set(self, redis_cls, bridge_logs):
        bridge = EventBridge(connect=False)
        bridge._shutdown_event.set()

        bridge._init_redis()

        redis_cls.assert_not_called()
        assert bridge._redis_tried is False
        assert bridge_logs() == []

    def test_a_connected_bridge_is_not_pinged_again_after_shutdown(
        self, bridge, redis_client, bridge_logs
    ):
        bridge._shutdown_event.set()
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        redis_client.ping.assert_called_once_with()
        assert bridge._redis_client is redis_client
        assert bridge_logs() == []


class TestOutageBookkeeping:
    def test_a_failed_ping_records_since_when_and_why(self, down_bridge):
        assert down_bridge.health()["outage"] == {
            "since": T0_TEXT,
            "error": "refused",
        }

    def test_a_later_failure_keeps_the_start_and_updates_the_error(
        self, down_bridge, redis_client, clock
    ):
        clock.time.return_value = T0 + 30
        redis_client.ping.side_effect = TimeoutError("timed out")

        down_bridge._init_redis()

        assert down_bridge.health()["outage"] == {
            "since": T0_TEXT,
            "error": "timed out",
        }

    def test_an_error_without_a_message_is_named_by_its_type(
        self, down_bridge, redis_client
    ):
        redis_client.ping.side_effect = ConnectionError()

        down_bridge._init_redis()

        assert down_bridge.health()["outage"]["error"] == "ConnectionError"

    def test_a_successful_ping_ends_the_outage_with_an_info_log(
        self, down_bridge, redis_client, clock, bridge_logs
    ):
        clock.time.return_value = T0 + 12.5
        redis_client.ping.side_effect = None

        down_bridge._init_redis()

        assert down_bridge.health()["outage"] is None
        assert down_bridge._redis_client is redis_client
        assert bridge_logs() == [
            info("Redis is back after 12.5 s"),
            CONNECTED,
        ]


def live_thread() -> MagicMock:
    thread = MagicMock()
    thread.is_alive.return_value = True
    return thread


def finished_thread() -> MagicMock:
    thread = MagicMock()
    thread.is_alive.return_value = False
    return thread


OWNERS = [
    pytest.param(lambda: None, id="no-subscriber-thread"),
    pytest.param(threading.current_thread, id="in-the-subscriber-thread"),
    pytest.param(finished_thread, id="subscriber-thread-finished"),
]


class TestSubscriberOwnership:
    def test_a_failed_ping_elsewhere_leaves_a_live_subscribers_pubsub_alone(
        self, bridge, redis_client, bridge_logs
    ):
        pubsub = bridge._redis_subscriber
        bridge._subscriber_thread = live_thread()
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        assert bridge._redis_client is None
        assert bridge._redis_subscriber is pubsub
        pubsub.close.assert_not_called()
        assert bridge_logs() == [REFUSED]

    def test_a_successful_ping_elsewhere_makes_no_pubsub_for_a_live_subscriber(
        self, bridge, redis_client
    ):
        bridge._redis_subscriber = None
        bridge._subscriber_thread = live_thread()
        redis_client.pubsub.reset_mock()

        bridge._init_redis()

        assert bridge._redis_client is redis_client
        assert bridge._redis_subscriber is None
        redis_client.pubsub.assert_not_called()

    @pytest.mark.parametrize("make_thread", OWNERS)
    def test_the_owner_closes_and_drops_the_pubsub_when_the_ping_fails(
        self, bridge, redis_client, bridge_logs, make_thread
    ):
        pubsub = bridge._redis_subscriber
        bridge._subscriber_thread = make_thread()
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        assert bridge._redis_subscriber is None
        pubsub.close.assert_called_once_with()
        assert bridge_logs() == [REFUSED]

    @pytest.mark.parametrize("make_thread", OWNERS)
    def test_the_owner_makes_a_new_pubsub_once_the_ping_succeeds(
        self, bridge, redis_client, make_thread
    ):
        bridge._redis_subscriber = None
        bridge._subscriber_thread = make_thread()
        redis_client.pubsub.reset_mock()

        bridge._init_redis()

        redis_client.pubsub.assert_called_once_with()
        assert bridge._redis_subscriber is redis_client.pubsub.return_value

    def test_an_existing_pubsub_is_kept_when_the_ping_succeeds(
        self, bridge, redis_client
    ):
        pubsub = bridge._redis_subscriber

        bridge._init_redis()

        assert bridge._redis_subscriber is pubsub
        redis_client.pubsub.assert_called_once_with()

    def test_a_failing_close_of_the_dropped_pubsub_is_logged_at_debug_level(
        self, bridge, redis_client, bridge_logs
    ):
        bridge._redis_subscriber.close.side_effect = OSError("gone")
        redis_client.ping.side_effect = ConnectionError("refused")

        bridge._init_redis()

        assert bridge._redis_subscriber is None
        assert bridge_logs() == [
            REFUSED,
            debug("Closing the Redis subscriber failed: gone"),
        ]


class TestPublishFailures:
    def test_a_publish_failure_is_an_outage_until_the_reconnect(
        self, bridge, redis_client, clock, bridge_logs
    ):
        redis_client.publish.side_effect = [ConnectionError("reset"), 1]
        clock.time.side_effect = [T0, T0 + 0.5]

        add(bridge, event(1))

        name = event(1)["event_type"]
        assert bridge.health()["outage"] is None
        assert bridge_logs() == [
            error(f"Failed to publish event {name} to Redis: reset"),
            info("Redis is back after 0.5 s"),
            CONNECTED,
            info(f"Published event {name} to Redis after reconnect"),
        ]

    def test_a_publish_failing_again_after_the_reconnect_leaves_no_client(
        self, bridge, redis_client, clock, start_reconnector
    ):
        redis_client.publish.side_effect = [
            ConnectionError("reset"),
            ConnectionError("still down"),
        ]

        add(bridge, event(1))

        assert bridge._redis_client is None
        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "still down"}
        assert contents(bridge._event_queue) == [event(1)]
        start_reconnector.assert_called_once_with()


class TestAddEventBehindKeptEvents:
    def test_while_events_are_kept_new_ones_queue_behind_them_unpublished(
        self, bridge, redis_client, start_reconnector
    ):
        bridge._event_queue.put(event(1))

        add(bridge, event(2), event(3))

        redis_client.publish.assert_not_called()
        assert contents(bridge._event_queue) == [event(1), event(2), event(3)]
        assert start_reconnector.call_count == 2

    def test_a_reconnector_is_started_under_the_publish_lock(
        self, offline_bridge, start_reconnector
    ):
        held = []
        start_reconnector.side_effect = lambda: held.append(
            offline_bridge._publish_lock._is_owned()
        )

        add(offline_bridge, event(1))

        assert held == [True]


class TestNobodySubscribed:
    def test_an_unreceived_event_is_kept_and_the_period_is_warned_about_once(
        self, bridge, redis_client, clock, bridge_logs
    ):
        redis_client.publish.return_value = 0

        add(bridge, event(1))
        kept = contents(bridge._event_queue)
        bridge._event_queue.get_nowait()
        add(bridge, event(2))

        assert kept == [event(1)]
        assert contents(bridge._event_queue) == [event(2)]
        assert redis_client.publish.call_args_list == published(event(1), event(2))
        assert bridge.stats == Counter({"published": 2, "queued_locally": 2})
        assert bridge_logs() == [
            no_subscribers(event(1)),
            queued_locally(event(1)),
            queued_locally(event(2)),
        ]

    def test_once_subscriber_wait_has_passed_events_go_to_nobody_counted(
        self, bridge, redis_client, clock, bridge_logs, start_reconnector
    ):
        redis_client.publish.return_value = 0
        kept = []
        for now, item in ((100.0, event(1)), (109.99, event(2)), (110.0, event(3))):
            clock.monotonic.return_value = now
            add(bridge, item)
            kept.append(contents(bridge._event_queue))
            while not bridge._event_queue.empty():
                bridge._event_queue.get_nowait()

        assert kept == [[event(1)], [event(2)], []]
        assert bridge.stats == Counter(
            {"published": 3, "queued_locally": 2, "unreceived": 1}
        )
        assert start_reconnector.call_count == 2
        assert bridge_logs() == [
            no_subscribers(event(1)),
            queued_locally(event(1)),
            queued_locally(event(2)),
        ]

    def test_a_received_event_starts_a_new_no_subscriber_period(
        self, bridge, redis_client, clock, bridge_logs
    ):
        redis_client.publish.side_effect = [0, 1, 0]
        add(bridge, event(1))
        bridge._event_queue.get_nowait()

        clock.monotonic.return_value = 200.0
        add(bridge, event(2))
        clock.monotonic.return_value = 205.0
        add(bridge, event(3))

        assert contents(bridge._event_queue) == [event(3)]
        assert "unreceived" not in bridge.stats
        assert bridge_logs() == [
            no_subscribers(event(1)),
            queued_locally(event(1)),
            info(f"Published event {event(2)['event_type']} to Redis (1 subscribers)"),
            no_subscribers(event(3)),
            queued_locally(event(3)),
        ]

    def test_with_no_subscriber_wait_events_go_to_nobody_at_once_warned_once(
        self, monkeypatch, redis_cls, redis_client, bridge_logs, start_reconnector
    ):
        monkeypatch.setenv("REDIS_SUBSCRIBER_WAIT", "0")
        redis_client.publish.return_value = 0
        bridge = EventBridge()

        add(bridge, event(1), event(2))

        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"published": 2, "unreceived": 2})
        start_reconnector.assert_not_called()
        assert bridge_logs() == [CONNECTED, no_subscribers(event(1))]


class TestKeepingInAnApiProcess:
    """With a WebSocket manager the local queue feeds local clients, and
    events wait for Redis in ``_pending``."""

    def test_an_event_redis_could_not_take_reaches_local_clients_now(
        self, offline_bridge, start_reconnector
    ):
        offline_bridge._websocket_manager = MagicMock()

        add(offline_bridge, event(1))

        assert contents(offline_bridge._event_queue) == [event(1)]
        assert contents(offline_bridge._pending) == [
            from_origin(offline_bridge, event(1))
        ]
        assert offline_bridge.stats == Counter(
            {"queued_locally": 1, "kept_for_redis": 1}
        )
        start_reconnector.assert_called_once_with()

    def test_the_origin_key_carries_this_bridges_own_random_id(
        self, offline_bridge, redis_cls
    ):
        other = EventBridge()
        offline_bridge._websocket_manager = MagicMock()

        add(offline_bridge, event(1))

        [kept] = contents(offline_bridge._pending)
        assert ORIGIN_KEY == "origin"
        assert kept["origin"] == offline_bridge._origin
        assert len(offline_bridge._origin) == 32
        assert offline_bridge._origin != other._origin

    def test_an_event_no_subscriber_received_reaches_local_clients_at_once(
        self, bridge, redis_client, clock, start_reconnector, bridge_logs
    ):
        """Not even this API's own subscriber took it: local clients get it
        from the local queue, the other API processes once they subscribe."""
        bridge._websocket_manager = MagicMock()
        redis_client.publish.return_value = 0

        add(bridge, event(1))

        assert contents(bridge._event_queue) == [event(1)]
        assert contents(bridge._pending) == [from_origin(bridge, event(1))]
        assert bridge.stats == Counter(
            {"published": 1, "kept_for_redis": 1, "queued_locally": 1}
        )
        start_reconnector.assert_called_once_with()
        assert bridge_logs() == [
            no_subscribers(event(1)),
            debug(f"Queued event {event(1)['event_type']} locally"),
        ]

    def test_new_events_queue_behind_pending_ones_and_reach_local_clients(
        self, bridge, redis_client
    ):
        bridge._websocket_manager = MagicMock()
        bridge._pending.put(event(1))

        add(bridge, event(2))

        redis_client.publish.assert_not_called()
        assert contents(bridge._pending) == [event(1), from_origin(bridge, event(2))]
        assert contents(bridge._event_queue) == [event(2)]

    def test_the_backlog_is_the_local_queue_without_a_manager_and_pending_with_one(
        self, bridge
    ):
        assert bridge._backlog() is bridge._event_queue

        bridge._websocket_manager = MagicMock()

        assert bridge._backlog() is bridge._pending

    def test_local_clients_get_events_kept_behind_an_unreceived_one_in_order(
        self, bridge, redis_client, clock
    ):
        # Redis is up, but this API's subscriber is reconnecting: event 1
        # reaches nobody and waits in _pending without an origin, to come
        # back through this API's own subscriber. Event 2 queues behind it.
        bridge._websocket_manager = MagicMock()
        redis_client.publish.return_value = 0

        add(bridge, event(1), event(2))

        # Local clients get the local queue now and the events without this
        # bridge's origin later, through its own subscriber.
        local_order = contents(bridge._event_queue) + [
            item for item in contents(bridge._pending) if ORIGIN_KEY not in item
        ]
        assert local_order == [event(1), event(2)]


class TestOwnEventsFromRedis:
    def test_an_event_carrying_this_bridges_origin_is_skipped_and_counted(
        self, bridge, mocker, bridge_logs
    ):
        process = mocker.patch.object(bridge, "_process_single_event")
        bridge._websocket_manager = MagicMock()

        bridge._handle_redis_message(json.dumps(from_origin(bridge, event(1))))

        process.assert_not_called()
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"own_skipped": 1})
        assert bridge_logs() == []

    def test_an_event_from_another_bridge_is_delivered(self, bridge, mocker):
        process = mocker.patch.object(bridge, "_process_single_event")
        bridge._websocket_manager = MagicMock()
        theirs = {**event(1), ORIGIN_KEY: "another-bridge"}

        bridge._handle_redis_message(json.dumps(theirs))

        process.assert_called_once_with(theirs)
        assert bridge.stats == Counter()


class TestReconnectLoop:
    def test_failed_attempts_wait_a_back_off_that_doubles_up_to_the_cap(
        self, down_bridge, redis_client, mocker, bridge_logs
    ):
        down_bridge._event_queue.put(event(1))
        wait = mocker.patch.object(
            down_bridge._shutdown_event, "wait", side_effect=[False] * 5 + [True]
        )

        down_bridge._reconnect_loop()

        assert wait.call_args_list == [call(d) for d in (1.0, 2.0, 4.0, 5.0, 5.0, 5.0)]
        assert down_bridge.stats == Counter({"reconnects": 5})
        assert redis_client.ping.call_count == 1 + 5
        redis_client.publish.assert_not_called()
        assert contents(down_bridge._event_queue) == [event(1)]
        assert bridge_logs() == [REFUSED] * 5 + [RECONNECTOR_STOPPED]

    def test_once_connected_it_publishes_the_kept_events_in_order_and_ends(
        self, down_bridge, down_waits, redis_client, bridge_logs
    ):
        events = [event(1), event(2), event(3)]
        for item in events:
            down_bridge._event_queue.put(item)
        down_bridge._reconnector_thread = threading.current_thread()
        subscribers_back(down_bridge, redis_client)
        redis_client.ping.side_effect = None
        redis_client.publish.return_value = 1

        down_bridge._reconnect_loop()

        assert down_waits.call_args_list == [call(1.0)]
        assert redis_client.publish.call_args_list == published(*events)
        assert down_bridge._event_queue.empty()
        # Every event taken was marked done: a join() on the buffer returns.
        assert down_bridge._event_queue.unfinished_tasks == 0
        assert down_bridge._reconnector_thread is None
        assert down_bridge.stats == Counter({"reconnects": 1, "published": 3})
        assert bridge_logs() == [
            info("Redis is back after 1.0 s"),
            CONNECTED,
            info("Published 3 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_events_kept_in_an_api_process_are_published_with_their_origin(
        self, down_bridge, down_waits, redis_client
    ):
        down_bridge._websocket_manager = MagicMock()
        down_bridge._subscriber_thread = MagicMock()
        add(down_bridge, event(1))
        subscribers_back(down_bridge, redis_client)
        redis_client.ping.side_effect = None
        redis_client.publish.return_value = 1

        down_bridge._reconnect_loop()

        assert redis_client.publish.call_args_list == published(
            from_origin(down_bridge, event(1))
        )
        assert down_bridge._pending.empty()
        assert contents(down_bridge._event_queue) == [event(1)]

    def test_nothing_kept_means_no_published_log(
        self, down_bridge, down_waits, redis_client, bridge_logs
    ):
        subscribers_back(down_bridge, redis_client)
        redis_client.ping.side_effect = None

        down_bridge._reconnect_loop()

        redis_client.publish.assert_not_called()
        assert down_bridge._reconnector_thread is None
        assert bridge_logs() == [
            info("Redis is back after 1.0 s"),
            CONNECTED,
            RECONNECTOR_STOPPED,
        ]

    @pytest.mark.parametrize(
        ("manager", "subscriber_thread", "starts"),
        [
            pytest.param(MagicMock(), None, True, id="serving-without-subscriber"),
            pytest.param(MagicMock(), MagicMock(), False, id="subscriber-exists"),
            pytest.param(None, None, False, id="not-serving"),
        ],
    )
    def test_once_connected_an_api_process_starts_its_subscriber(
        self,
        down_bridge,
        down_waits,
        redis_client,
        mocker,
        manager,
        subscriber_thread,
        starts,
    ):
        start_subscriber = mocker.patch.object(down_bridge, "_start_redis_subscriber")
        down_bridge._websocket_manager = manager
        down_bridge._subscriber_thread = subscriber_thread
        subscribers_back(down_bridge, redis_client)
        redis_client.ping.side_effect = None

        down_bridge._reconnect_loop()

        assert start_subscriber.call_count == (1 if starts else 0)

    def test_no_subscriber_is_started_while_redis_stays_down(
        self, down_bridge, redis_client, mocker
    ):
        start_subscriber = mocker.patch.object(down_bridge, "_start_redis_subscriber")
        down_bridge._websocket_manager = MagicMock()
        mocker.patch.object(
            down_bridge._shutdown_event, "wait", side_effect=[False, True]
        )

        down_bridge._reconnect_loop()

        start_subscriber.assert_not_called()

    def test_a_publish_error_puts_the_event_back_at_the_head_and_reconnects(
        self, bridge, waits, redis_client, bridge_logs
    ):
        events = [event(1), event(2), event(3)]
        for item in events:
            bridge._event_queue.put(item)
        subscribers_back(bridge, redis_client)
        redis_client.publish.side_effect = [1, ConnectionError("reset"), 1, 1]
        during_outage = []

        def wait(timeout):
            during_outage.append(
                (
                    bridge._redis_client,
                    contents(bridge._event_queue),
                    bridge.health()["outage"],
                )
            )
            return False

        waits.side_effect = wait

        bridge._reconnect_loop()

        assert during_outage == [
            (None, [event(2), event(3)], {"since": T0_TEXT, "error": "reset"})
        ]
        assert waits.call_args_list == [call(1.0)]
        assert redis_client.publish.call_args_list == published(
            event(1), event(2), event(2), event(3)
        )
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"published": 3, "reconnects": 1})
        assert bridge_logs() == [
            error("Failed to publish kept events to Redis: reset"),
            info("Redis is back after 0.0 s"),
            CONNECTED,
            info("Published 2 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_the_back_off_starts_again_after_a_successful_reconnect(
        self, down_bridge, down_waits, redis_client
    ):
        down_bridge._event_queue.put(event(1))
        subscribers_back(down_bridge, redis_client)
        redis_client.ping.side_effect = [ConnectionError("refused"), True, True]
        redis_client.publish.side_effect = [ConnectionError("reset"), 1]

        down_bridge._reconnect_loop()

        assert down_waits.call_args_list == [call(1.0), call(2.0), call(1.0)]
        assert redis_client.publish.call_args_list == published(event(1), event(1))
        assert down_bridge.stats == Counter({"reconnects": 3, "published": 1})

    def test_an_event_nobody_received_is_offered_again_after_the_poll_interval(
        self, bridge, waits, redis_client, clock, bridge_logs
    ):
        bridge._event_queue.put(event(1))
        bridge._event_queue.put(event(2))
        subscribers_back(bridge, redis_client)
        redis_client.publish.side_effect = [0, 1, 1]

        bridge._reconnect_loop()

        assert waits.call_args_list == [call(0.1)]
        assert redis_client.publish.call_args_list == published(
            event(1), event(1), event(2)
        )
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"published": 2})
        assert bridge_logs() == [
            info("Published 2 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_kept_events_go_to_nobody_once_subscriber_wait_has_passed(
        self, bridge, waits, redis_client, clock
    ):
        bridge._event_queue.put(event(1))
        subscribers_back(bridge, redis_client)
        redis_client.publish.return_value = 0

        def wait(timeout):
            clock.monotonic.return_value += 5.0
            return False

        waits.side_effect = wait

        bridge._reconnect_loop()

        assert waits.call_args_list == [call(0.1)] * 2
        assert redis_client.publish.call_count == 3
        assert bridge._event_queue.empty()
        assert bridge.stats == Counter({"published": 1, "unreceived": 1})

    def test_shutdown_before_the_first_round_ends_it_at_once(
        self, bridge, redis_client, bridge_logs
    ):
        bridge._event_queue.put(event(1))
        bridge._shutdown_event.set()

        bridge._reconnect_loop()

        redis_client.publish.assert_not_called()
        assert contents(bridge._event_queue) == [event(1)]
        assert bridge_logs() == [RECONNECTOR_STOPPED]

    def test_shutdown_during_the_flush_leaves_the_rest_kept(
        self, bridge, waits, redis_client, bridge_logs
    ):
        sentinel = threading.current_thread()
        bridge._reconnector_thread = sentinel
        for item in (event(1), event(2), event(3)):
            bridge._event_queue.put(item)
        subscribers_back(bridge, redis_client)

        def publish(channel, message):
            bridge._shutdown_event.set()
            return 1

        redis_client.publish.side_effect = publish

        bridge._reconnect_loop()

        assert redis_client.publish.call_args_list == published(event(1))
        assert contents(bridge._event_queue) == [event(2), event(3)]
        assert bridge._reconnector_thread is sentinel
        assert bridge_logs() == [RECONNECTOR_STOPPED]

    def test_a_flush_without_a_client_leaves_the_backlog_alone(
        self, bridge, redis_client, bridge_logs
    ):
        sentinel = threading.current_thread()
        bridge._reconnector_thread = sentinel
        bridge._event_queue.put(event(1))
        bridge._redis_client = None

        assert bridge._flush() is False

        redis_client.publish.assert_not_called()
        assert contents(bridge._event_queue) == [event(1)]
        assert bridge._reconnector_thread is sentinel
        assert bridge.health()["outage"] is None
        assert bridge_logs() == []


def waiting_for(limit: str, listening: int, expected: Any) -> Any:
    return info(
        f"Waiting up to {limit} s for the Redis subscribers ({listening} of "
        f"{expected} back) before publishing kept events"
    )


def numsub(*counts: int) -> List[Any]:
    return [[(CHANNEL, count)] for count in counts]


class TestWaitingForSubscribers:
    """After an outage kept events wait until the subscribers are back."""

    def test_kept_events_wait_until_as_many_subscribers_as_last_time_are_back(
        self, bridge, waits, redis_client, bridge_logs
    ):
        bridge._event_queue.put(event(1))
        bridge._receivers_seen = 2
        redis_client.pubsub_numsub.side_effect = numsub(1, 1, 2)
        redis_client.publish.return_value = 2

        bridge._reconnect_loop()

        assert redis_client.pubsub_numsub.call_args_list == [call(CHANNEL)] * 3
        assert waits.call_args_list == [call(0.1)] * 2
        assert redis_client.publish.call_args_list == published(event(1))
        assert bridge_logs() == [
            waiting_for("10", 1, 2),
            info("Published 1 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_the_count_to_wait_for_is_the_receivers_of_the_last_received_event(
        self, bridge, redis_client, bridge_logs
    ):
        redis_client.publish.side_effect = [3, 0]
        add(bridge, event(1), event(2))
        redis_client.pubsub_numsub.return_value = [(CHANNEL, 2)]

        assert bridge._flush() is False

        redis_client.publish.assert_has_calls(published(event(1), event(2)))
        assert bridge_logs()[-1] == waiting_for("10", 2, 3)

    def test_when_too_few_come_back_it_publishes_after_subscriber_wait(
        self, bridge, waits, redis_client, clock, bridge_logs
    ):
        bridge._event_queue.put(event(1))
        bridge._receivers_seen = 2
        redis_client.pubsub_numsub.return_value = [(CHANNEL, 1)]
        redis_client.publish.return_value = 1
        clock.monotonic.side_effect = [100.0, 109.99, 110.0]

        bridge._reconnect_loop()

        assert waits.call_args_list == [call(0.1)] * 2
        assert redis_client.publish.call_args_list == published(event(1))
        assert bridge_logs() == [
            waiting_for("10", 1, 2),
            info("Published 1 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_after_waiting_in_vain_it_expects_those_that_came_back(
        self, bridge, redis_client, clock, bridge_logs
    ):
        bridge._receivers_seen = 2
        redis_client.pubsub_numsub.side_effect = numsub(1, 1, 0)
        clock.monotonic.side_effect = [100.0, 110.0, 120.0]

        waited = [bridge._subscribers_back() for _ in range(3)]

        # 1 of 2 back: waits; 10 s later it gives up and expects 1 from now
        # on; 0 of 1 back: a new wait starts.
        assert waited == [False, True, False]
        assert bridge_logs() == [waiting_for("10", 1, 2), waiting_for("10", 0, 1)]

    def test_a_bridge_that_never_saw_a_receiver_waits_for_every_reconnect_delay(
        self, bridge, waits, redis_client, clock, bridge_logs
    ):
        bridge.retry_delay = 0.25
        bridge.restart_max_delay = 2.0
        bridge._event_queue.put(event(1))
        redis_client.pubsub_numsub.return_value = [(CHANNEL, 1)]
        redis_client.publish.return_value = 1
        clock.monotonic.side_effect = [100.0, 102.24, 102.25]

        bridge._reconnect_loop()

        assert waits.call_args_list == [call(0.1)] * 2
        assert redis_client.publish.call_args_list == published(event(1))
        assert bridge_logs() == [
            waiting_for("2.25", 1, "unknown"),
            info("Published 1 kept events to Redis"),
            RECONNECTOR_STOPPED,
        ]

    def test_counting_subscribers_that_fails_holds_nothing_back(
        self, bridge, redis_client, bridge_logs
    ):
        bridge._event_queue.put(event(1))
        redis_client.pubsub_numsub.side_effect = RuntimeError("unknown command")
        redis_client.publish.return_value = 1

        assert bridge._flush() is True

        assert redis_client.publish.call_args_list == published(event(1))
        assert bridge_logs() == [
            debug("Counting the Redis subscribers failed: unknown command"),
            info("Published 1 kept events to Redis"),
        ]

    def test_without_a_client_there_is_nobody_to_count(
        self, bridge, redis_client, bridge_logs
    ):
        bridge._redis_client = None

        assert bridge._subscribers_back() is True

        redis_client.pubsub_numsub.assert_not_called()
        assert bridge_logs() == []

    def test_once_all_are_back_a_later_shortfall_starts_a_new_wait(
        self, bridge, redis_client, clock, bridge_logs
    ):
        bridge._receivers_seen = 2
        redis_client.pubsub_numsub.side_effect = numsub(1, 2, 1)
        clock.monotonic.side_effect = [100.0, 200.0]

        waited = [bridge._subscribers_back() for _ in range(3)]

        assert waited == [False, True, False]
        assert bridge_logs() == [waiting_for("10", 1, 2)] * 2


class TestDropWarnings:
    @pytest.fixture
    def small(self, monkeypatch, clock, redis_cls, redis_client) -> EventBridge:
        """An offline bridge that keeps at most two events."""
        monkeypatch.setenv("REDIS_BUFFER_SIZE", "2")
        redis_client.ping.side_effect = ConnectionError("refused")
        return EventBridge()

    def full(self) -> Any:
        return warning(
            "The Redis buffer is full (2 events): dropping the oldest until "
            "Redis takes them (REDIS_BUFFER_SIZE)"
        )

    def test_the_first_drop_is_warned_about_once(self, small, bridge_logs):
        add(small, *[event(n) for n in range(1, 6)])

        assert contents(small._event_queue) == [event(4), event(5)]
        assert bridge_logs() == [
            queued_locally(event(1)),
            queued_locally(event(2)),
            queued_locally(event(3)),
            self.full(),
            queued_locally(event(4)),
            queued_locally(event(5)),
        ]

    def test_a_completed_flush_reports_the_drops_and_warns_again_on_the_next(
        self, small, clock, mocker, redis_client, bridge_logs
    ):
        fake_waits(mocker, small, clock)
        add(small, *[event(n) for n in range(1, 4)])
        subscribers_back(small, redis_client)
        redis_client.ping.side_effect = None
        redis_client.publish.return_value = 1
        small._reconnect_loop()
        redis_client.ping.side_effect = ConnectionError("refused")
        small._redis_client = None
        before = len(bridge_logs())

        add(small, *[event(n) for n in range(4, 7)])

        assert bridge_logs()[4:before] == [
            info("Redis is back after 1.0 s"),
            CONNECTED,
            info("Published 2 kept events to Redis"),
            warning(
                "1 events were dropped while Redis could not take them "
                "(the buffer holds 2)"
            ),
            RECONNECTOR_STOPPED,
        ]
        assert bridge_logs()[before:] == [
            queued_locally(event(4)),
            queued_locally(event(5)),
            queued_locally(event(6)),
            self.full(),
        ]

    def test_a_flush_without_new_drops_reports_none(
        self, small, redis_client, bridge_logs
    ):
        add(small, *[event(n) for n in range(1, 4)])
        subscribers_back(small, redis_client)
        redis_client.ping.side_effect = None
        redis_client.publish.return_value = 1
        small._init_redis()
        assert small._flush() is True
        small._event_queue.put(event(4))
        before = len(bridge_logs())

        assert small._flush() is True

        assert bridge_logs()[before:] == [info("Published 1 kept events to Redis")]

    def test_in_embedded_mode_a_full_local_queue_is_no_redis_buffer(
        self, monkeypatch, disabled, redis_cls, bridge_logs
    ):
        monkeypatch.setenv("REDIS_BUFFER_SIZE", "1")
        bridge = EventBridge()

        add(bridge, event(1), event(2))

        assert bridge._event_queue.dropped == 1
        assert bridge_logs() == [
            DISABLED,
            queued_locally(event(1)),
            queued_locally(event(2)),
        ]


class TestStartingTheReconnector:
    @pytest.mark.parametrize(
        ("make_thread", "starts"),
        [
            pytest.param(lambda: None, True, id="none-yet"),
            pytest.param(live_thread, False, id="one-alive"),
            pytest.param(finished_thread, True, id="previous-one-finished"),
        ],
    )
    def test_a_reconnector_starts_only_when_none_is_alive(
        self, bridge, start_reconnector, make_thread, starts
    ):
        bridge._reconnector_thread = make_thread()

        bridge._ensure_reconnector()

        assert start_reconnector.call_count == (1 if starts else 0)

    def test_start_reconnector_runs_the_reconnect_loop_in_a_daemon_thread(
        self, bridge, mocker
    ):
        thread_cls = mocker.patch("osism.services.event_bridge.threading.Thread")

        START_RECONNECTOR(bridge)

        thread_cls.assert_called_once_with(
            target=bridge._reconnect_loop,
            name="osism-event-bridge-reconnector",
            daemon=True,
        )
        thread_cls.return_value.start.assert_called_once_with()
        assert bridge._reconnector_thread is thread_cls.return_value
        assert bridge._subscriber_thread is None
        assert bridge._processor_thread is None

    def test_a_manager_attached_without_redis_gets_a_reconnector_not_a_subscriber(
        self, offline_bridge, start_reconnector, mocker
    ):
        start_subscriber = mocker.patch.object(EventBridge, "_start_redis_subscriber")
        start_processor = mocker.patch.object(EventBridge, "_start_processor_thread")
        held = []
        start_reconnector.side_effect = lambda: held.append(
            offline_bridge._publish_lock._is_owned()
        )

        offline_bridge.set_websocket_manager(MagicMock())

        start_processor.assert_called_once_with()
        start_subscriber.assert_not_called()
        assert held == [True]

    def test_a_manager_attached_with_redis_gets_a_subscriber_not_a_reconnector(
        self, bridge, start_reconnector, mocker
    ):
        start_subscriber = mocker.patch.object(EventBridge, "_start_redis_subscriber")
        mocker.patch.object(EventBridge, "_start_processor_thread")

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_called_once_with()
        start_reconnector.assert_not_called()

    def test_a_manager_attached_again_with_redis_starts_nothing_more(
        self, bridge, start_reconnector, mocker
    ):
        start_subscriber = mocker.patch.object(EventBridge, "_start_redis_subscriber")
        mocker.patch.object(EventBridge, "_start_processor_thread")
        bridge._subscriber_thread = live_thread()

        bridge.set_websocket_manager(MagicMock())

        start_subscriber.assert_not_called()
        start_reconnector.assert_not_called()


@pytest.fixture
def supervised(bridge, mocker) -> Any:
    """The supervisor's collaborators, stubbed: (run, connect, wait)."""
    return (
        mocker.patch.object(bridge, "_redis_subscriber_loop"),
        mocker.patch.object(bridge, "_init_redis"),
        mocker.patch.object(bridge._shutdown_event, "wait"),
    )


def restarting(delay: str) -> Any:
    return warning(f"Restarting the Redis subscriber in {delay} s")


class TestSuperviseSubscriber:
    def test_a_loop_that_gives_up_is_restarted_after_a_doubling_cool_down(
        self, bridge, supervised, bridge_logs
    ):
        run, connect, wait = supervised
        wait.side_effect = [False] * 4 + [True]

        bridge._supervise_subscriber()

        assert run.call_count == 5
        assert wait.call_args_list == [call(d) for d in (1.0, 2.0, 4.0, 5.0, 5.0)]
        assert connect.call_count == 4
        assert bridge.stats == Counter({"subscriber_restarts": 5})
        assert bridge_logs() == [restarting(d) for d in ("1", "2", "4", "5", "5")]

    def test_the_cool_down_follows_the_instances_delays(
        self, bridge, supervised, bridge_logs
    ):
        run, connect, wait = supervised
        bridge.retry_delay = 0.25
        bridge.restart_max_delay = 0.75
        wait.side_effect = [False] * 3 + [True]

        bridge._supervise_subscriber()

        assert wait.call_args_list == [call(d) for d in (0.25, 0.5, 0.75, 0.75)]
        assert bridge_logs() == [restarting(d) for d in ("0.25", "0.5", "0.75", "0.75")]

    def test_each_run_starts_disconnected_and_a_subscribed_run_resets_the_cool_down(
        self, bridge, supervised
    ):
        run, connect, wait = supervised
        bridge._subscriber_connected = True
        seen = []

        def one_run():
            seen.append(("run", bridge._subscriber_connected))
            if run.call_count == 3:
                bridge._subscriber_connected = True

        def cool_down(delay):
            seen.append((delay, bridge._subscriber_connected))
            return wait.call_count == 4

        run.side_effect = one_run
        wait.side_effect = cool_down

        bridge._supervise_subscriber()

        assert seen == [
            ("run", False),
            (1.0, False),
            ("run", False),
            (2.0, False),
            ("run", False),
            (1.0, False),
            ("run", False),
            (2.0, False),
        ]

    def test_an_exception_from_the_loop_is_logged_counted_and_the_loop_restarted(
        self, bridge, supervised, clock, bridge_logs
    ):
        run, connect, wait = supervised
        run.side_effect = [RuntimeError("boom"), None]
        wait.side_effect = [False, True]

        bridge._supervise_subscriber()

        assert run.call_count == 2
        assert bridge.stats == Counter({"redis_errors": 1, "subscriber_restarts": 2})
        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "boom"}
        assert bridge_logs() == [
            error("Redis subscriber failed: boom"),
            restarting("1"),
            restarting("2"),
        ]

    def test_it_reconnects_before_each_restart(self, bridge, supervised):
        run, connect, wait = supervised
        steps = []
        run.side_effect = lambda: steps.append("run")
        connect.side_effect = lambda: steps.append("connect")

        def cool_down(delay):
            steps.append(f"wait {delay:g}")
            return wait.call_count == 2

        wait.side_effect = cool_down

        bridge._supervise_subscriber()

        assert steps == ["run", "wait 1", "connect", "run", "wait 2"]

    def test_shutdown_while_the_loop_runs_ends_it_without_a_restart(
        self, bridge, supervised, bridge_logs
    ):
        run, connect, wait = supervised
        run.side_effect = lambda: bridge._shutdown_event.set()

        bridge._supervise_subscriber()

        run.assert_called_once_with()
        wait.assert_not_called()
        connect.assert_not_called()
        assert bridge.stats == Counter()
        assert bridge_logs() == []

    def test_a_loop_failing_during_shutdown_is_not_restarted(
        self, bridge, supervised, bridge_logs
    ):
        run, connect, wait = supervised

        def fail_while_stopping():
            bridge._shutdown_event.set()
            raise RuntimeError("closed")

        run.side_effect = fail_while_stopping

        bridge._supervise_subscriber()

        wait.assert_not_called()
        assert "subscriber_restarts" not in bridge.stats
        assert bridge_logs() == [error("Redis subscriber failed: closed")]

    def test_shutdown_while_reconnecting_ends_it_without_another_run(
        self, bridge, supervised
    ):
        run, connect, wait = supervised
        wait.return_value = False
        connect.side_effect = lambda: bridge._shutdown_event.set()

        bridge._supervise_subscriber()

        run.assert_called_once_with()
        connect.assert_called_once_with()

    def test_shutdown_before_it_starts_runs_nothing(self, bridge, supervised):
        run, connect, wait = supervised
        bridge._shutdown_event.set()

        bridge._supervise_subscriber()

        run.assert_not_called()


class TestSubscriberConnected:
    """What health() reports as redis_connected follows the subscriber loop."""

    def test_it_is_connected_once_subscribed_and_not_while_reconnecting(
        self, bridge, clock, mocker
    ):
        pubsub = bridge._redis_subscriber
        pubsub.subscribe.side_effect = [None, ConnectionError("down")]
        mocker.patch.object(bridge, "_init_redis")
        seen = []
        mocker.patch.object(
            bridge._shutdown_event,
            "wait",
            side_effect=lambda delay: seen.append(
                ("wait", bridge._subscriber_connected)
            ),
        )
        results: List[Any] = [ConnectionError("lost"), None]

        def get_message(timeout):
            seen.append(("read", bridge._subscriber_connected))
            if results:
                result = results.pop(0)
                if isinstance(result, BaseException):
                    raise result
                return result
            bridge._shutdown_event.set()
            return None

        pubsub.get_message.side_effect = get_message

        bridge._redis_subscriber_loop()

        # Subscribed; a read fails; the retry wait; subscribing again fails;
        # the next read succeeds, and from then on it is connected.
        assert seen == [
            ("read", True),
            ("wait", False),
            ("read", False),
            ("read", True),
        ]
        assert bridge.health()["outage"] == {"since": T0_TEXT, "error": "lost"}


class TestResubscribe:
    def test_a_successful_subscribe_marks_the_subscriber_connected(
        self, bridge, bridge_logs
    ):
        bridge._subscriber_connected = False

        bridge._resubscribe()

        assert bridge._subscriber_connected is True
        assert bridge_logs() == [info("Subscribed to Redis channel osism:events again")]

    def test_a_failed_subscribe_is_logged_at_debug_and_leaves_it_disconnected(
        self, bridge, bridge_logs
    ):
        bridge._redis_subscriber.subscribe.side_effect = ConnectionError("down")

        bridge._resubscribe()

        bridge._redis_subscriber.subscribe.assert_called_once_with(CHANNEL)
        assert bridge._subscriber_connected is False
        assert bridge_logs() == [debug("Subscribing again failed: down")]


class TestHealthDuringOutages:
    @pytest.mark.parametrize("subscribed", [False, True])
    def test_with_a_live_subscriber_redis_counts_as_connected_once_subscribed(
        self, bridge, subscribed
    ):
        bridge._subscriber_thread = live_thread()
        bridge._subscriber_connected = subscribed

        health = bridge.health()

        assert (health["mode"], health["redis_connected"]) == ("redis", subscribed)
        assert health["subscriber_alive"] is True

    def test_an_api_process_reports_its_pending_events_as_buffered(self, bridge):
        bridge._websocket_manager = MagicMock()
        bridge._event_queue.put(event(1))
        bridge._pending.put(event(2))
        bridge._pending.put(event(3))

        health = bridge.health()

        assert (health["local_queue"], health["buffered"]) == (1, 2)

    def test_events_dropped_by_either_buffer_are_reported(self, monkeypatch, redis_cls):
        monkeypatch.setenv("REDIS_BUFFER_SIZE", "1")
        bridge = EventBridge()
        bridge.stats.update(published=1)
        for number in range(2):
            bridge._event_queue.put(event(number))
        for number in range(3):
            bridge._pending.put(event(number))

        counters = bridge.health()["counters"]

        assert counters == {"published": 1, "buffer_dropped": 3}
        assert bridge.stats == Counter({"published": 1})


class TestShutdownAfterOutages:
    def test_a_live_reconnector_is_joined_after_shutdown_was_signalled(self, bridge):
        reconnector = live_thread()
        bridge._reconnector_thread = reconnector
        signalled = []
        reconnector.join.side_effect = lambda timeout: signalled.append(
            bridge._shutdown_event.is_set()
        )

        bridge.shutdown()

        reconnector.join.assert_called_once_with(timeout=5.0)
        assert signalled == [True]

    def test_a_finished_reconnector_is_not_joined(self, bridge):
        reconnector = finished_thread()
        bridge._reconnector_thread = reconnector

        bridge.shutdown()

        reconnector.join.assert_not_called()

    def test_events_never_published_are_reported_with_a_warning(
        self, offline_bridge, bridge_logs
    ):
        for number in range(2):
            offline_bridge._event_queue.put(event(number))

        offline_bridge.shutdown()

        assert bridge_logs() == [
            info("Shutting down the event bridge"),
            warning("2 kept events were never published to Redis"),
        ]

    def test_an_api_process_reports_its_pending_events_not_its_local_queue(
        self, offline_bridge, bridge_logs
    ):
        offline_bridge._websocket_manager = MagicMock()
        for number in range(3):
            offline_bridge._event_queue.put(event(number))
        for number in range(2):
            offline_bridge._pending.put(event(number))

        offline_bridge.shutdown()

        assert bridge_logs()[-1] == warning(
            "2 kept events were never published to Redis"
        )

    def test_the_redis_client_is_closed(self, bridge, redis_client):
        bridge.shutdown()

        redis_client.close.assert_called_once_with()

    def test_a_failing_client_close_is_logged_at_debug_level_and_swallowed(
        self, bridge, redis_client, bridge_logs
    ):
        redis_client.close.side_effect = OSError("gone")

        bridge.shutdown()

        assert bridge_logs() == [
            info("Shutting down the event bridge"),
            debug("Closing the Redis client failed: gone"),
        ]

    def test_a_bridge_that_never_made_a_client_closes_none(
        self, redis_cls, bridge_logs
    ):
        bridge = EventBridge(connect=False)

        bridge.shutdown()

        redis_cls.return_value.close.assert_not_called()
        assert bridge_logs() == [info("Shutting down the event bridge")]
