"""Unit tests of osism.services.bridge.reconnector: reconnect, then publish
the kept events in order. The thread's body runs in the test's thread."""

import json
from collections import Counter

import pytest

from osism.services.bridge.history import RedisHistory

from tests.unit.services.bridge.conftest import CHANNEL, event
from tests.unit.services.bridge_doubles import FakeThread
from tests.unit.services.bridge_log_lines import debug, error, info, warning

CONNECTED = info("Connected to Redis at redis:6379/0")
REFUSED = error("Failed to connect to Redis: refused")
STOPPED = debug("Reconnector stopped")


def kept(side, *numbers: int) -> None:
    for number in numbers:
        side.backlog.keep(event(number))


@pytest.fixture
def down(make_side, fake_redis):
    """Redis refused the first connection; the subscribers of the last event
    that anybody received (one) are back as soon as Redis is."""
    fake_redis.go_down()
    side = make_side()
    side.receivers.keeps_unreceived(1)
    fake_redis.add_subscribers(CHANNEL, 1)
    return side


@pytest.fixture
def up(make_side, fake_redis):
    side = make_side()
    side.receivers.keeps_unreceived(1)
    fake_redis.add_subscribers(CHANNEL, 1)
    return side


class TestReconnecting:
    def test_failed_attempts_wait_a_back_off_that_doubles_up_to_the_cap(
        self, make_side, fake_redis, bridge_logs
    ):
        fake_redis.go_down()
        side = make_side(stop_after=6)
        kept(side, 1)

        side.reconnector.run()

        assert side.shutdown.waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
        assert side.stats == Counter({"reconnects": 5})
        assert fake_redis.published == []
        assert side.contents() == [event(1)]
        assert side.connected == []
        assert bridge_logs() == [REFUSED] * 5 + [STOPPED]

    def test_once_connected_it_publishes_the_kept_events_in_order_and_ends(
        self, down, fake_redis, bridge_logs
    ):
        kept(down, 1, 2, 3)
        fake_redis.come_back()

        down.reconnector.run()

        assert down.shutdown.waits == [1.0]
        assert fake_redis.messages(CHANNEL) == [event(1), event(2), event(3)]
        assert down.contents() == []
        assert down.backlog.buffer.unfinished_tasks == 0
        assert down.connected == ["connected"]
        assert down.stats == Counter({"reconnects": 1, "published": 3})
        assert bridge_logs() == [
            info("Redis is back after 1.0 s"),
            CONNECTED,
            info("Published 3 kept events to Redis"),
            STOPPED,
        ]

    def test_by_default_kept_events_are_published_and_kept_nowhere_else(
        self, down, fake_redis
    ):
        kept(down, 1)
        fake_redis.come_back()

        down.reconnector.run()

        assert fake_redis.messages(CHANNEL) == [event(1)]
        assert fake_redis.streams == {}

    def test_with_a_history_kept_events_go_into_the_stream_too(
        self, make_side, fake_redis
    ):
        fake_redis.go_down()
        side = make_side(history=RedisHistory(10))
        side.receivers.keeps_unreceived(1)
        fake_redis.add_subscribers(CHANNEL, 1)
        kept(side, 1, 2)
        fake_redis.come_back()

        side.reconnector.run()

        assert fake_redis.messages(CHANNEL) == [event(1), event(2)]
        assert fake_redis.stream_events(f"{CHANNEL}:history") == [event(1), event(2)]

    def test_nothing_kept_means_no_published_log(self, down, fake_redis, bridge_logs):
        fake_redis.come_back()

        down.reconnector.run()

        assert fake_redis.published == []
        assert down.connected == ["connected"]
        assert bridge_logs() == [
            info("Redis is back after 1.0 s"),
            CONNECTED,
            STOPPED,
        ]

    def test_the_back_off_starts_again_after_a_successful_reconnect(
        self, down, fake_redis
    ):
        kept(down, 1)
        fake_redis.come_back()
        fake_redis.fail_next("ping", ConnectionError("refused"))
        fake_redis.fail_next("publish", ConnectionError("reset"))

        down.reconnector.run()

        assert down.shutdown.waits == [1.0, 2.0, 1.0]
        assert fake_redis.messages(CHANNEL) == [event(1)]
        assert down.stats == Counter({"reconnects": 3, "published": 1})


class TestFlushing:
    def test_a_publish_error_puts_the_event_back_at_the_head_and_reconnects(
        self, up, fake_redis, bridge_logs
    ):
        kept(up, 1, 2, 3)
        fake_redis.fail_next("publish", ConnectionError("reset"))
        fake_redis.published.clear()
        during_outage = []
        original_wait = up.shutdown.wait

        def wait(timeout=None):
            during_outage.append((up.link.client, up.contents(), up.link.outage()))
            return original_wait(timeout)

        up.shutdown.wait = wait

        up.reconnector.run()

        assert during_outage == [
            (
                None,
                [event(1), event(2), event(3)],
                {"since": "2023-11-14T22:13:20Z", "error": "reset"},
            )
        ]
        assert fake_redis.messages(CHANNEL) == [event(1), event(2), event(3)]
        assert up.stats == Counter({"published": 3, "reconnects": 1})
        assert bridge_logs() == [
            error("Failed to publish kept events to Redis: reset"),
            info("Redis is back after 1.0 s"),
            CONNECTED,
            info("Published 3 kept events to Redis"),
            STOPPED,
        ]

    def test_an_event_nobody_received_is_offered_again_after_the_poll_interval(
        self, up, fake_redis, bridge_logs
    ):
        kept(up, 1, 2)
        fake_redis.add_subscribers(CHANNEL, -1)
        first_offer = []
        original_wait = up.shutdown.wait

        def subscriber_comes(timeout=None):
            first_offer.extend(fake_redis.published)
            fake_redis.add_subscribers(CHANNEL, 1)
            return original_wait(timeout)

        up.shutdown.wait = subscriber_comes
        fake_redis.fail_next("pubsub_numsub", RuntimeError("not counted"))

        up.reconnector.run()

        assert [json.loads(m) for _, m in first_offer] == [event(1)]
        assert up.shutdown.waits == [0.1]
        assert fake_redis.messages(CHANNEL) == [event(1), event(1), event(2)]
        assert up.stats == Counter({"published": 2})

    def test_kept_events_go_to_nobody_once_subscriber_wait_has_passed(
        self, make_side, fake_redis
    ):
        side = make_side(subscriber_wait=10.0)
        kept(side, 1)
        original_wait = side.shutdown.wait

        def five_seconds(timeout=None):
            side.clock.advance(5.0)
            return original_wait(timeout)

        side.shutdown.wait = five_seconds
        fake_redis.fail_next("pubsub_numsub", *[RuntimeError("not counted")] * 3)

        side.reconnector.run()

        assert side.shutdown.waits == [0.1, 0.1]
        assert len(fake_redis.published) == 3
        assert side.contents() == []
        assert side.stats == Counter({"published": 1, "unreceived": 1})

    def test_shutdown_before_the_first_round_ends_it_at_once(
        self, up, fake_redis, bridge_logs
    ):
        kept(up, 1)
        up.shutdown.set()

        up.reconnector.run()

        assert fake_redis.published == []
        assert up.contents() == [event(1)]
        assert bridge_logs() == [STOPPED]

    def test_shutdown_during_the_flush_leaves_the_rest_kept(
        self, up, fake_redis, threads
    ):
        kept(up, 1, 2, 3)
        up.reconnector.ensure_running()
        fake_redis.when_published = up.shutdown.set

        threads[0].run()

        assert fake_redis.messages(CHANNEL) == [event(1)]
        assert up.contents() == [event(2), event(3)]
        assert up.reconnector.thread is threads[0]

    def test_a_flush_cut_short_by_shutdown_is_not_done(self, up, fake_redis):
        kept(up, 1, 2)
        fake_redis.when_published = up.shutdown.set

        assert up.reconnector.flush() is False

        assert up.contents() == [event(2)]

    def test_a_flush_without_a_client_leaves_the_backlog_alone(
        self, make_side, fake_redis, bridge_logs
    ):
        side = make_side(connect=False)
        kept(side, 1)

        assert side.reconnector.flush() is False

        assert side.contents() == [event(1)]
        assert side.link.outage() is None
        assert bridge_logs() == []

    def test_a_completed_flush_forgets_its_thread_and_reports_the_drops(
        self, make_side, fake_redis, threads, bridge_logs
    ):
        side = make_side(buffer_size=2)
        side.receivers.keeps_unreceived(1)
        fake_redis.add_subscribers(CHANNEL, 1)
        kept(side, 1, 2, 3)
        side.reconnector.ensure_running()

        assert side.reconnector.flush() is True

        assert side.reconnector.thread is None
        assert fake_redis.messages(CHANNEL) == [event(2), event(3)]
        assert bridge_logs() == [
            info("Published 2 kept events to Redis"),
            warning(
                "1 events were dropped while Redis could not take them "
                "(the buffer holds 2)"
            ),
        ]


class TestWaitingForSubscribers:
    def test_kept_events_wait_until_as_many_subscribers_as_last_time_are_back(
        self, up, fake_redis, bridge_logs
    ):
        kept(up, 1)
        up.receivers.keeps_unreceived(2)
        original_wait = up.shutdown.wait

        def one_more_each_time(timeout=None):
            if len(up.shutdown.waits) == 1:
                fake_redis.add_subscribers(CHANNEL, 1)
            return original_wait(timeout)

        up.shutdown.wait = one_more_each_time

        up.reconnector.run()

        assert up.shutdown.waits == [0.1, 0.1]
        assert fake_redis.messages(CHANNEL) == [event(1)]
        assert bridge_logs() == [
            info(
                "Waiting up to 10 s for the Redis subscribers (1 of 2 back) "
                "before publishing kept events"
            ),
            info("Published 1 kept events to Redis"),
            STOPPED,
        ]


class TestStarting:
    @pytest.mark.parametrize(
        ("alive", "starts"),
        [
            pytest.param(None, True, id="none-yet"),
            pytest.param(True, False, id="one-alive"),
            pytest.param(False, True, id="previous-one-finished"),
        ],
    )
    def test_a_reconnector_starts_only_when_none_is_alive(
        self, up, threads, alive, starts
    ):
        if alive is not None:
            previous = FakeThread(lambda: None, "reconnector")
            previous.alive = alive
            up.reconnector.thread = previous

        up.reconnector.ensure_running()

        assert len(threads) == (1 if starts else 0)
        if starts:
            assert up.reconnector.thread is threads[0]
            assert threads[0].name == "osism-event-bridge-reconnector"
            assert threads[0].target == up.reconnector.run
