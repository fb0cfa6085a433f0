"""Unit tests of osism.services.event_bridge through its public methods:
the parts wired together, on an in-memory Redis (tests/unit/services/fake_redis.py).

Threads are made but not started (the ``threads`` fixture): a test runs a
thread's body itself, and the bridge's ``shutdown`` ends it. The seed's
private names are tested in test_event_bridge_contract.py.
"""

import logging
from typing import Any, List
from unittest.mock import AsyncMock

import pytest

from osism.services.event_bridge import EventBridge
from osism.services.event_history import EventHistory
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings
from tests.unit.services.bridge_log_lines import info, warning

CHANNEL = "osism:events"
# Delays that cost nothing where a test lets a real wait happen.
QUICK = dict(redis_retry_delay=0.001, redis_restart_max_delay=0.001)
DISABLED = info(
    "Redis is disabled (REDIS_HOST is empty): events reach only this "
    "process's WebSocket clients"
)


def event(number: int) -> Any:
    return {"event_type": f"compute.instance.update.{number}", "payload": {"n": number}}


def add(bridge: EventBridge, *events: Any) -> None:
    for item in events:
        bridge.add_event(item["event_type"], item["payload"])


class Manager:
    """A WebSocket manager without a loop of its own yet: the bridge hands
    events to it on a private loop."""

    def __init__(self) -> None:
        self.received: List[Any] = []
        self.remembered: List[Any] = []
        self.broadcast_event_from_notification = AsyncMock(
            side_effect=lambda *event, **ids: (
                self.received.append((*event, ids))
                if ids
                else self.received.append(event)
            )
        )

    def remember(self, notifications: List[Any]) -> None:
        self.remembered.extend(notifications)


def thread(threads: List[Any], part: str) -> Any:
    [found] = [t for t in threads if t.part == part]
    return found


def warnings_and_errors(lines: List[Any]) -> List[Any]:
    return [line for line in lines if line[1] >= logging.WARNING]


class TestPublishingAndSubscribing:
    def test_an_event_added_to_one_bridge_reaches_anothers_manager(
        self, make_bridge, fake_redis, threads
    ):
        api, listener = make_bridge(), make_bridge()
        manager = Manager()
        api.set_websocket_manager(manager)
        subscriber = thread(threads, "subscriber")
        fake_redis.when_idle = lambda: (
            listener.add_event("baremetal.node.power_set.end", {"a": 1}, "ironic.h1")
            if not fake_redis.published
            else api.shutdown()
        )

        subscriber.run()

        assert manager.received == [
            ("baremetal.node.power_set.end", {"a": 1}, "ironic.h1")
        ]
        assert fake_redis.messages(CHANNEL) == [
            {
                "event_type": "baremetal.node.power_set.end",
                "payload": {"a": 1},
                "publisher_id": "ironic.h1",
            }
        ]
        assert listener.stats["published"] == 1
        assert fake_redis.subscribers(CHANNEL) == 0

    def test_attaching_starts_the_processor_then_the_subscriber(
        self, make_bridge, threads
    ):
        bridge = make_bridge(connect=False)

        bridge.set_websocket_manager(Manager())
        bridge.set_websocket_manager(Manager())

        assert [t.name for t in threads] == [
            "osism-event-bridge-processor",
            "osism-event-bridge-subscriber",
        ]
        assert bridge.health()["subscriber_alive"] is True

    def test_a_publishing_bridge_starts_no_thread(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.add_subscribers(CHANNEL, 1)
        bridge = make_bridge(connect=False)

        bridge.add_event("x", {})

        assert threads == []
        assert bridge.health()["counters"] == {"published": 1}

    def test_the_processor_delivers_the_local_queue_to_the_manager(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.go_down()
        bridge = make_bridge(**QUICK)
        manager = Manager()
        bridge.set_websocket_manager(manager)
        add(bridge, event(1))

        def receive_then_shut_down(*notification: Any) -> None:
            manager.received.append(notification)
            bridge.shutdown()

        manager.broadcast_event_from_notification.side_effect = receive_then_shut_down

        thread(threads, "processor").run()

        assert manager.received == [(event(1)["event_type"], {"n": 1})]


class TestHistory:
    """The Redis stream next to the channel (EVENT_HISTORY_SIZE)."""

    def test_what_is_published_is_kept_in_the_stream_too(self, make_bridge, fake_redis):
        bridge = make_bridge()

        bridge.add_event("x.y", {"n": 1}, None, "e-1", "2026-12-06T00:00:00Z")

        published = {
            "event_type": "x.y",
            "payload": {"n": 1},
            "id": "e-1",
            "timestamp": "2026-12-06T00:00:00Z",
        }
        assert fake_redis.messages(CHANNEL) == [published]
        assert fake_redis.stream_events(f"{CHANNEL}:history") == [published]

    def test_an_api_that_subscribes_remembers_the_recent_events(
        self, make_bridge, fake_redis, threads
    ):
        # Events nobody receives are published at once, not kept to be
        # offered again (REDIS_SUBSCRIBER_WAIT 0): the stream has them.
        listener = make_bridge(redis_subscriber_wait=0)
        for number in (1, 2):
            listener.add_event("x.y", {}, None, f"e{number}")
        api = make_bridge()
        manager = Manager()
        api.set_websocket_manager(manager)
        fake_redis.when_idle = api.shutdown

        thread(threads, "subscriber").run()

        assert manager.remembered == [
            ("x.y", {}, None, "e1", None),
            ("x.y", {}, None, "e2", None),
        ]
        assert manager.received == []

    def test_after_a_broken_subscription_what_was_missed_is_delivered(
        self, make_bridge, fake_redis, threads
    ):
        api, listener = make_bridge(**QUICK), make_bridge()
        manager = Manager()
        api.set_websocket_manager(manager)
        steps = [
            lambda: listener.add_event("x.y", {}, None, "e1"),
            # The subscription breaks; e2 is published meanwhile.
            lambda: (fake_redis.restart(), listener.add_event("x.y", {}, None, "e2")),
            api.shutdown,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        thread(threads, "subscriber").run()

        assert [r[-1]["event_id"] for r in manager.received] == ["e1", "e2"]
        assert api.health()["counters"]["caught_up"] == 1


class MarkedHistory(EventHistory):
    """An event history that records every mark of ``current``."""

    marks: List[bool]

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "current":
            self.__dict__.setdefault("marks", []).append(value)
        super().__setattr__(name, value)


class LoadingManager(WebSocketManager):
    history: MarkedHistory


def loading_manager() -> LoadingManager:
    """A manager (no loop yet: marks apply at once) whose history the API's
    start marked as to be loaded."""
    manager = LoadingManager()
    manager.history = MarkedHistory(100)
    manager.history.current = False
    return manager


class TestResumesWaitForTheHistory:
    """The manager's history is current (resume_wait) once loaded or caught
    up from Redis, or when there is no Redis to load from."""

    def test_an_api_on_redis_is_current_once_it_loaded_the_history(
        self, make_bridge, fake_redis, threads
    ):
        make_bridge(redis_subscriber_wait=0).add_event("x.y", {}, None, "e1")
        api, manager = make_bridge(), loading_manager()
        assert api.loads_history() is True

        api.set_websocket_manager(manager)
        assert manager.history.current is False
        fake_redis.when_idle = api.shutdown
        thread(threads, "subscriber").run()

        assert "e1" in manager.history
        assert manager.history.marks == [True, False, True]

    def test_a_broken_subscription_is_pending_until_caught_up(
        self, make_bridge, fake_redis, threads
    ):
        api, listener = make_bridge(**QUICK), make_bridge()
        manager = loading_manager()
        api.set_websocket_manager(manager)
        steps = [
            lambda: listener.add_event("x.y", {}, None, "e1"),
            # The subscription breaks; e2 is published meanwhile.
            lambda: (fake_redis.restart(), listener.add_event("x.y", {}, None, "e2")),
            api.shutdown,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        thread(threads, "subscriber").run()

        assert manager.history.marks == [True, False, True, False, True]
        assert [manager.event_queue.get_nowait().id for _ in range(2)] == ["e1", "e2"]

    def test_without_redis_at_the_start_nothing_waits_until_redis_is_back(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.go_down()
        api, manager = make_bridge(connect=False, **QUICK), loading_manager()

        api.set_websocket_manager(manager)
        assert manager.history.current is True
        fake_redis.come_back()
        thread(threads, "reconnector").run()
        assert manager.history.current is False
        fake_redis.when_idle = api.shutdown
        thread(threads, "subscriber").run()

        assert manager.history.marks == [True, False, True, False, True]

    def test_an_api_without_redis_does_not_load_it(self, make_bridge, fake_redis):
        assert make_bridge(redis_host="").loads_history() is False
        fake_redis.go_down()
        absent = make_bridge(connect=False)
        absent.set_websocket_manager(Manager())

        assert absent.loads_history() is False


class TestPublishNow:
    """For a publisher that keeps what Redis does not take itself."""

    def test_an_event_redis_took_is_true(self, make_bridge, fake_redis):
        bridge = make_bridge(connect=False)

        assert bridge.publish_now({"event_type": "x.y", "payload": {}, "id": "e1"})
        assert fake_redis.messages(CHANNEL) == [
            {"event_type": "x.y", "payload": {}, "id": "e1"}
        ]

    def test_without_redis_it_is_false_and_nothing_is_kept(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.go_down()
        bridge = make_bridge()

        assert bridge.publish_now({"event_type": "x.y", "payload": {}}) is False
        assert bridge.health()["buffered"] == 0
        assert threads == []

    def test_redis_back_is_found_again(self, make_bridge, fake_redis):
        fake_redis.go_down()
        bridge = make_bridge()
        fake_redis.come_back()

        assert bridge.publish_now({"event_type": "x.y", "payload": {}})

    def test_a_payload_that_is_not_json_raises(self, make_bridge, fake_redis):
        bridge = make_bridge()

        with pytest.raises(TypeError):
            bridge.publish_now({"event_type": "x.y", "payload": {"a": object}})
        assert fake_redis.published == []


class TestSettings:
    def test_the_channel_comes_from_the_settings(self, make_bridge, fake_redis):
        fake_redis.add_subscribers("cloud-a:events", 1)
        bridge = make_bridge(redis_channel="cloud-a:events")

        bridge.add_event("x", {})

        assert fake_redis.published == [
            ("cloud-a:events", '{"event_type": "x", "payload": {}}')
        ]
        assert bridge.health()["channel"] == "cloud-a:events"

    def test_the_environment_is_read_once_when_the_bridge_is_made(
        self, fake_redis, threads, monkeypatch
    ):
        monkeypatch.setenv("REDIS_HOST", "redis-a")
        bridge = EventBridge(connect=False)
        monkeypatch.setenv("REDIS_HOST", "redis-b")

        bridge.add_event("x", {})

        assert [made["host"] for made in fake_redis.made] == ["redis-a"]

    def test_given_settings_are_used_instead_of_the_environment(
        self, fake_redis, threads, monkeypatch
    ):
        monkeypatch.setenv("REDIS_PORT", "6380")

        EventBridge(settings=Settings.model_validate({"redis_port": 7000}))

        assert fake_redis.made[0]["port"] == 7000

    def test_a_retry_delay_above_the_cap_is_every_wait(self, make_bridge):
        bridge = make_bridge(redis_retry_delay=2.0, redis_restart_max_delay=1.0)

        # Nothing public shows the cool-downs without waiting them.
        delays = bridge._subscriber.restart_backoff.delays()
        assert [next(delays) for _ in range(3)] == [2.0, 2.0, 2.0]

    def test_how_long_redis_has_to_answer_a_ping_comes_from_the_settings(
        self, make_bridge
    ):
        bridge = make_bridge(redis_socket_timeout=2.5)

        # Shown in public only by a Redis that stops answering for that long.
        assert bridge._subscriber.answer_within == 2.5

    def test_how_long_kept_events_wait_for_subscribers_comes_from_the_settings(
        self, make_bridge
    ):
        bridge = make_bridge(
            redis_subscriber_wait=3.0,
            redis_retry_delay=2.0,
            redis_restart_max_delay=5.0,
        )

        # Shown in public only by waiting that long.
        receivers = bridge._reconnector.receivers
        assert (receivers.subscriber_wait, receivers.reconnect_window) == (3.0, 7.0)
        assert receivers.stats is bridge.stats


class TestOwnership:
    def test_a_failed_reconnect_elsewhere_leaves_the_subscribers_pubsub_alone(
        self, make_bridge, fake_redis, threads
    ):
        bridge = make_bridge()
        bridge.set_websocket_manager(Manager())
        pubsub = fake_redis.pubsubs[0]
        fake_redis.go_down()

        bridge.add_event("x", {})

        assert bridge.health()["mode"] == "embedded"
        # The seed's name for the pub/sub; nothing public shows which it is.
        assert bridge._redis_subscriber is pubsub
        assert pubsub.closed is False

    def test_a_publisher_back_on_redis_starts_no_subscriber(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.go_down()
        listener = make_bridge(**QUICK)
        add(listener, event(1))
        fake_redis.come_back()
        fake_redis.add_subscribers(CHANNEL, 1)

        thread(threads, "reconnector").run()

        assert [t.part for t in threads] == ["reconnector"]
        assert fake_redis.messages(CHANNEL) == [event(1)]


class TestRedisDisabled:
    @pytest.fixture
    def disabled(self, make_bridge):
        return make_bridge(redis_host="")

    def test_it_is_said_at_info_level_and_nothing_connects(
        self, make_bridge, fake_redis, bridge_logs
    ):
        disabled = make_bridge(redis_host="")

        assert fake_redis.made == []
        assert bridge_logs() == [DISABLED]
        health = disabled.health()
        assert (health["mode"], health["outage"]) == ("embedded", None)

    def test_events_go_to_local_clients_only_and_nothing_waits_for_redis(
        self, disabled, threads, bridge_logs
    ):
        disabled.set_websocket_manager(Manager())
        add(disabled, event(1))
        disabled.shutdown()

        assert [t.part for t in threads] == ["processor"]
        assert disabled.health()["local_queue"] == 1
        assert disabled.health()["buffered"] == 0
        assert warnings_and_errors(bridge_logs()) == []

    def test_a_publisher_keeps_nothing_it_would_report_at_shutdown(
        self, make_bridge, threads, bridge_logs
    ):
        publisher = make_bridge(redis_host="")
        add(publisher, event(1), event(2))

        publisher.shutdown()

        assert threads == []
        assert warnings_and_errors(bridge_logs()) == []


class TestEmbeddedByDefault:
    """An API without REDIS_HOST that finds nothing at the default host."""

    @pytest.fixture
    def embedded(self, make_bridge, fake_redis):
        fake_redis.go_down()
        bridge = make_bridge(connect=False, **QUICK)
        bridge.set_websocket_manager(Manager())
        return bridge

    def test_it_runs_embedded_keeps_looking_and_reports_no_outage(
        self, embedded, threads, bridge_logs
    ):
        add(embedded, event(1))
        embedded.shutdown()

        assert [t.part for t in threads] == ["processor", "reconnector"]
        health = embedded.health()
        assert (health["mode"], health["outage"]) == ("embedded", None)
        assert (health["local_queue"], health["buffered"]) == (1, 0)
        assert warnings_and_errors(bridge_logs()) == []

    def test_once_redis_answers_it_subscribes(self, embedded, fake_redis, threads):
        fake_redis.come_back()
        embedded.add_event("x", {})

        thread(threads, "reconnector").run()

        assert [t.part for t in threads] == ["processor", "reconnector", "subscriber"]
        assert embedded.health()["mode"] == "redis"


class TestOutages:
    @pytest.fixture
    def api_manager(self) -> Manager:
        return Manager()

    @pytest.fixture
    def api(self, make_bridge, fake_redis, api_manager):
        """An API process whose Redis went away; the one other API process
        had received its last event, and is back as soon as Redis is."""
        bridge = make_bridge(**QUICK)
        bridge.set_websocket_manager(api_manager)
        fake_redis.add_subscribers(CHANNEL, 1)
        bridge.add_event("before", {})
        fake_redis.go_down()
        return bridge

    def test_health_shows_the_outage_and_what_waits(self, api):
        add(api, event(1), event(2))

        health = api.health()

        assert health["mode"] == "embedded"
        assert health["redis_connected"] is False
        assert health["outage"]["error"] == "refused"
        assert (health["local_queue"], health["buffered"]) == (2, 2)
        assert health["counters"] == {
            "published": 1,
            "queued_locally": 2,
            "kept_for_redis": 2,
        }

    def test_kept_events_are_published_with_the_origin_when_redis_is_back(
        self, api, fake_redis, threads, bridge_logs
    ):
        add(api, event(1))
        fake_redis.come_back()

        thread(threads, "reconnector").run()

        [_, published] = fake_redis.messages(CHANNEL)
        assert published["event_type"] == event(1)["event_type"]
        assert len(published["origin"]) == 32
        assert api.health()["buffered"] == 0
        assert info("Published 1 kept events to Redis") in bridge_logs()

    def test_kept_events_published_when_redis_is_back_are_in_the_history_too(
        self, api, fake_redis, threads
    ):
        add(api, event(1), event(2))
        fake_redis.come_back()

        thread(threads, "reconnector").run()

        published = fake_redis.messages(CHANNEL)
        assert [m["event_type"] for m in published] == [
            "before",
            event(1)["event_type"],
            event(2)["event_type"],
        ]
        assert fake_redis.stream_events(f"{CHANNEL}:history") == published

    def test_its_own_events_coming_back_are_not_delivered_twice(
        self, api, api_manager, fake_redis, threads
    ):
        add(api, event(1))
        fake_redis.come_back()
        manager = api_manager
        idle = []

        def flush_then_shut_down() -> None:
            idle.append(True)
            if len(idle) == 1:
                thread(threads, "reconnector").run()
            else:
                api.shutdown()

        fake_redis.when_idle = flush_then_shut_down

        thread(threads, "subscriber").run()

        assert [m["event_type"] for m in fake_redis.messages(CHANNEL)] == [
            "before",
            event(1)["event_type"],
        ]
        assert api.stats["own_skipped"] == 1
        assert manager.received == []

    @pytest.mark.parametrize(
        ("failing", "comes_back"),
        [
            pytest.param(
                "pubsub.get_message",
                info("Subscribed to Redis channel osism:events again"),
                id="a-read-fails-the-loop-reconnects",
            ),
            pytest.param(
                "pubsub.subscribe",
                warning("Restarting the Redis subscriber in 0.001 s"),
                id="subscribing-fails-the-supervisor-restarts-it",
            ),
        ],
    )
    def test_the_stream_comes_back_by_itself(
        self, make_bridge, fake_redis, threads, bridge_logs, failing, comes_back
    ):
        bridge = make_bridge(**QUICK)
        manager = Manager()
        bridge.set_websocket_manager(manager)
        fake_redis.fail_next(failing, ConnectionError("lost"))

        def publish_once_then_shut_down() -> None:
            if fake_redis.published:
                bridge.shutdown()
            else:
                fake_redis.client().publish(
                    CHANNEL, '{"event_type": "x", "payload": {}}'
                )

        fake_redis.when_idle = publish_once_then_shut_down

        thread(threads, "subscriber").run()

        assert manager.received == [("x", {})]
        assert comes_back in bridge_logs()

    def test_events_never_published_are_counted_at_shutdown(
        self, make_bridge, fake_redis, bridge_logs
    ):
        fake_redis.go_down()
        listener = make_bridge()
        add(listener, event(1), event(2))

        listener.shutdown()

        assert bridge_logs()[-1] == warning(
            "2 kept events were never published to Redis"
        )

    def test_events_dropped_beyond_the_bound_are_counted(self, make_bridge, fake_redis):
        fake_redis.go_down()
        bridge = make_bridge(redis_buffer_size=1)
        bridge.set_websocket_manager(Manager())
        add(bridge, event(1), event(2), event(3))

        counters = bridge.health()["counters"]

        assert counters["buffer_dropped"] == 4
        assert "buffer_dropped" not in bridge.stats


class TestShutdown:
    def test_the_threads_are_joined_and_the_client_closed(
        self, make_bridge, fake_redis, threads
    ):
        fake_redis.go_down()
        bridge = make_bridge()
        bridge.set_websocket_manager(Manager())
        add(bridge, event(1))

        bridge.shutdown()

        assert [(t.part, t.joined) for t in threads] == [
            ("processor", [5.0]),
            ("reconnector", [5.0]),
        ]
        assert fake_redis.clients[0].closed is True

    def test_after_shutdown_redis_is_not_tried_any_more(self, make_bridge, fake_redis):
        bridge = make_bridge(connect=False)
        bridge.shutdown()

        bridge.add_event("x", {})

        assert fake_redis.made == []

    def test_a_connected_bridge_is_not_pinged_after_shutdown(
        self, make_bridge, fake_redis, bridge_logs
    ):
        bridge = make_bridge()
        bridge.shutdown()
        fake_redis.go_down()

        bridge.add_event("x", {})

        assert "Failed to connect to Redis: refused" not in [
            m for *_, m in bridge_logs()
        ]


class TestHealth:
    def test_a_connected_bridge_reports_redis_mode(self, make_bridge, fake_redis):
        fake_redis.add_subscribers(CHANNEL, 1)
        bridge = make_bridge()
        bridge.add_event("x", {})

        assert bridge.health() == {
            "mode": "redis",
            "redis_connected": True,
            "subscriber_alive": False,
            "channel": "osism:events",
            "local_queue": 0,
            "buffered": 0,
            "outage": None,
            "counters": {"published": 1},
        }

    def test_a_live_subscriber_counts_as_connected_once_subscribed(
        self, make_bridge, fake_redis, threads
    ):
        bridge = make_bridge()
        bridge.set_websocket_manager(Manager())
        before = bridge.health()["redis_connected"]
        connected_while_reading = []

        def look_then_shut_down() -> None:
            connected_while_reading.append(bridge.health()["redis_connected"])
            bridge.shutdown()

        fake_redis.when_idle = look_then_shut_down

        thread(threads, "subscriber").run()

        assert (before, connected_while_reading) == (False, [True])
