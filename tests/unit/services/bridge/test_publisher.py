"""Unit tests of osism.services.bridge.publisher: publish, or keep."""

import json
import queue
from collections import Counter
from typing import Any, List

import pytest

from osism.services.event_buffer import EventBuffer
from tests.unit.services.bridge.conftest import CHANNEL, ORIGIN, event
from tests.unit.services.bridge_log_lines import debug, error, info, warning


def name(number: int) -> str:
    return event(number)["event_type"]


def no_subscribers(number: int):
    return warning(
        f"No Redis subscribers received event {name(number)} (is the API running?)"
    )


def queued_locally(number: int):
    return debug(f"Queued event {name(number)} locally")


def received(number: int, count: int):
    return info(f"Published event {name(number)} to Redis ({count} subscribers)")


@pytest.fixture
def side(make_side):
    return make_side()


@pytest.fixture
def listened(side, fake_redis):
    """Another process subscribes to the channel."""
    fake_redis.add_subscribers(CHANNEL, 1)
    return side


class TestPublishing:
    def test_an_event_is_published_as_json_on_the_channel(
        self, listened, fake_redis, bridge_logs, threads
    ):
        listened.publisher.publish(event(1))
        listened.publisher.publish(event(2))

        assert fake_redis.published == [
            (CHANNEL, json.dumps(event(1))),
            (CHANNEL, json.dumps(event(2))),
        ]
        assert listened.stats == Counter({"published": 2})
        assert bridge_logs() == [received(1, 1), received(2, 1)]
        assert listened.contents() == []
        assert threads == []

    def test_a_payload_that_is_not_json_raises_without_reconnecting(
        self, listened, fake_redis
    ):
        with pytest.raises(TypeError):
            listened.publisher.publish({"event_type": "x", "payload": {"o": object()}})

        assert fake_redis.published == []
        assert listened.link.client is not None
        assert listened.contents() == []


class TestPublishingNow:
    def test_redis_refusing_is_false_and_keeps_nothing(self, side, fake_redis):
        fake_redis.go_down()

        assert side.publisher.publish_now(event(1)) is False
        assert side.contents() == []
        assert side.local_queue.empty()

    def test_without_a_client_one_connection_is_tried(self, make_side, fake_redis):
        side = make_side(connect=False)

        assert side.publisher.publish_now(event(1)) is True
        assert fake_redis.messages(CHANNEL) == [event(1)]

    def test_redis_still_gone_is_false(self, make_side, fake_redis):
        fake_redis.go_down()
        side = make_side(connect=False)

        assert side.publisher.publish_now(event(1)) is False


class TestPublishFailures:
    def test_a_failed_publish_reconnects_and_publishes_again(
        self, listened, fake_redis, bridge_logs
    ):
        fake_redis.fail_next("publish", ConnectionError("reset"))
        listened.clock.advance(0.5)

        listened.publisher.publish(event(1))

        assert fake_redis.messages(CHANNEL) == [event(1)]
        assert listened.stats == Counter({"published": 1})
        assert listened.link.outage() is None
        assert bridge_logs() == [
            error(f"Failed to publish event {name(1)} to Redis: reset"),
            info("Redis is back after 0.0 s"),
            info("Connected to Redis at redis:6379/0"),
            info(f"Published event {name(1)} to Redis after reconnect"),
        ]

    def test_each_publish_after_a_reconnect_is_counted(self, listened, fake_redis):
        for number in (1, 2):
            fake_redis.fail_next("publish", ConnectionError("reset"))
            listened.publisher.publish(event(number))

        assert fake_redis.messages(CHANNEL) == [event(1), event(2)]
        assert listened.stats == Counter({"published": 2})

    def test_the_failure_is_the_outages_cause_before_reconnecting(
        self, listened, fake_redis
    ):
        during_reconnect = []
        listened.publisher.reconnect = lambda: during_reconnect.append(
            listened.link.outage()
        )
        fake_redis.fail_next("publish", ConnectionError("reset"))

        listened.publisher.publish(event(1))

        assert during_reconnect == [{"since": "2023-11-14T22:13:20Z", "error": "reset"}]
        assert fake_redis.messages(CHANNEL) == [event(1)]

    def test_when_the_reconnect_fails_the_event_is_kept(
        self, side, fake_redis, bridge_logs, threads
    ):
        fake_redis.go_down(ConnectionError("reset"))

        side.publisher.publish(event(1))

        assert side.link.client is None
        assert side.contents() == [event(1)]
        assert side.stats == Counter({"queued_locally": 1})
        assert [t.part for t in threads] == ["reconnector"]
        assert bridge_logs() == [
            error(f"Failed to publish event {name(1)} to Redis: reset"),
            error("Failed to connect to Redis: reset"),
            queued_locally(1),
        ]

    def test_a_publish_failing_again_after_the_reconnect_keeps_the_event(
        self, side, fake_redis, bridge_logs
    ):
        fake_redis.fail_next(
            "publish", ConnectionError("reset"), ConnectionError("still down")
        )

        side.publisher.publish(event(1))

        assert side.link.client is None
        assert side.link.outage()["error"] == "still down"
        assert side.contents() == [event(1)]
        assert bridge_logs()[-2:] == [
            error(
                f"Failed to publish event {name(1)} to Redis after reconnect: "
                "still down"
            ),
            queued_locally(1),
        ]

    def test_without_a_client_the_event_is_kept_at_once(self, make_side, fake_redis):
        side = make_side(connect=False)

        side.publisher.publish(event(1))

        assert fake_redis.published == []
        assert side.contents() == [event(1)]


class TestKeptEventsComeFirst:
    def test_while_events_are_kept_new_ones_queue_behind_them(
        self, listened, fake_redis, threads
    ):
        listened.backlog.keep(event(1))

        listened.publisher.publish(event(2))
        listened.publisher.publish(event(3))

        assert fake_redis.published == []
        assert listened.contents() == [event(1), event(2), event(3)]
        assert len(threads) == 1

    def test_the_reconnector_is_started_under_the_backlogs_lock(
        self, side, fake_redis, threads, mocker
    ):
        held = []
        fake_redis.go_down()
        start = mocker.patch.object(
            side.reconnector,
            "ensure_running",
            # Only RLock's private _is_owned tells whether this thread holds it.
            side_effect=lambda: held.append(side.backlog.lock._is_owned()),
        )

        side.publisher.publish(event(1))

        start.assert_called_once_with()
        assert held == [True]


class TestNobodySubscribed:
    def test_an_unreceived_event_is_kept_and_the_period_warned_about_once(
        self, side, fake_redis, bridge_logs
    ):
        side.publisher.publish(event(1))
        side.backlog.take()
        side.publisher.publish(event(2))

        assert side.contents() == [event(2)]
        assert [m for m in fake_redis.messages(CHANNEL)] == [event(1), event(2)]
        assert side.stats == Counter({"published": 2, "queued_locally": 2})
        assert bridge_logs() == [
            no_subscribers(1),
            queued_locally(1),
            queued_locally(2),
        ]

    def test_once_subscriber_wait_has_passed_events_go_to_nobody_counted(
        self, side, threads
    ):
        kept: List[Any] = []
        for seconds in (0.0, 9.99, 0.01):
            side.clock.advance(seconds)
            side.publisher.publish(event(len(kept)))
            kept.append(side.contents())
            while not side.backlog.empty():
                side.backlog.take()

        assert kept == [[event(0)], [event(1)], []]
        assert side.stats == Counter(
            {"published": 3, "queued_locally": 2, "unreceived": 1}
        )

    def test_a_received_event_starts_a_new_no_subscriber_period(
        self, side, fake_redis, bridge_logs
    ):
        side.publisher.publish(event(1))
        side.backlog.take()
        fake_redis.add_subscribers(CHANNEL, 1)
        side.publisher.publish(event(2))
        fake_redis.add_subscribers(CHANNEL, -1)

        side.publisher.publish(event(3))

        assert side.contents() == [event(3)]
        assert bridge_logs() == [
            no_subscribers(1),
            queued_locally(1),
            received(2, 1),
            no_subscribers(3),
            queued_locally(3),
        ]

    def test_without_subscriber_wait_events_go_to_nobody_at_once(
        self, make_side, bridge_logs, threads
    ):
        side = make_side(subscriber_wait=0.0)

        side.publisher.publish(event(1))
        side.publisher.publish(event(2))

        assert side.contents() == []
        assert side.stats == Counter({"published": 2, "unreceived": 2})
        assert threads == []
        assert bridge_logs() == [no_subscribers(1)]


class TestKeeping:
    def test_a_bridge_that_only_publishes_keeps_events_in_its_local_queue(self, side):
        side.publisher.keep(event(1))

        assert list(side.local_queue.queue) == [event(1)]
        assert side.backlog.buffer is side.local_queue

    def test_events_not_kept_for_redis_start_no_reconnector(self, side, threads):
        side.keeps_for_redis = False

        side.publisher.keep(event(1))

        assert side.contents() == [event(1)]
        assert side.stats == Counter({"queued_locally": 1})
        assert threads == []

    def test_the_first_drop_is_warned_about_once(self, make_side, bridge_logs):
        side = make_side(buffer_size=2, connect=False)

        for number in range(1, 6):
            side.publisher.keep(event(number))

        assert side.contents() == [event(4), event(5)]
        assert bridge_logs() == [
            queued_locally(1),
            queued_locally(2),
            queued_locally(3),
            warning(
                "The Redis buffer is full (2 events): dropping the oldest until "
                "Redis takes them (REDIS_BUFFER_SIZE)"
            ),
            queued_locally(4),
            queued_locally(5),
        ]

    def test_without_a_redis_buffer_a_full_local_queue_is_not_warned_about(
        self, make_side, bridge_logs
    ):
        side = make_side(buffer_size=1, connect=False)
        side.keeps_for_redis = False

        side.publisher.keep(event(1))
        side.publisher.keep(event(2))

        assert side.local_queue.dropped == 1
        assert bridge_logs() == [queued_locally(1), queued_locally(2)]

    def test_what_keeping_raises_reaches_the_caller(self, side, mocker):
        mocker.patch.object(side.local_queue, "put_nowait", side_effect=queue.Full)

        with pytest.raises(queue.Full):
            side.publisher.keep(event(1))


class TestServingLocalClients:
    """An API process: local clients get what Redis did not deliver at once,
    the other API processes later, marked with this process's origin."""

    @pytest.fixture
    def api(self, make_side):
        side = make_side(connect=False)
        side.publisher.serve_local_clients(side.local_queue, EventBuffer(100))
        return side

    def test_an_event_redis_could_not_take_reaches_local_clients_now(
        self, api, threads
    ):
        api.publisher.publish(event(1))

        assert list(api.local_queue.queue) == [event(1)]
        assert api.contents() == [{**event(1), "origin": ORIGIN}]
        assert api.backlog.buffer is not api.local_queue
        assert api.stats == Counter({"queued_locally": 1, "kept_for_redis": 1})
        assert len(threads) == 1

    def test_an_event_nobody_received_reaches_local_clients_at_once(
        self, api, fake_redis
    ):
        api.link.connect(serving=True)

        api.publisher.publish(event(1))

        assert list(api.local_queue.queue) == [event(1)]
        assert api.contents() == [{**event(1), "origin": ORIGIN}]
        assert api.stats == Counter(
            {"published": 1, "kept_for_redis": 1, "queued_locally": 1}
        )

    def test_new_events_queue_behind_kept_ones_and_reach_local_clients(
        self, api, fake_redis
    ):
        api.link.connect(serving=True)
        fake_redis.add_subscribers(CHANNEL, 1)
        api.backlog.keep(event(1))

        api.publisher.publish(event(2))

        assert fake_redis.published == []
        assert api.contents() == [event(1), {**event(2), "origin": ORIGIN}]
        assert list(api.local_queue.queue) == [event(2)]

    def test_without_redis_events_reach_local_clients_only(self, api, threads):
        api.keeps_for_redis = False

        api.publisher.publish(event(1))

        assert list(api.local_queue.queue) == [event(1)]
        assert api.contents() == []
        assert api.stats == Counter({"queued_locally": 1})
        assert threads == []

    def test_serving_is_set_up_once(self, api):
        backlog = api.backlog.buffer

        api.publisher.serve_local_clients(EventBuffer(1), EventBuffer(1))

        assert api.backlog.buffer is backlog
        assert api.publisher.local_queue is api.local_queue
