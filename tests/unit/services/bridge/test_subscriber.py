"""Unit tests of osism.services.bridge.subscriber: reading the channel,
reconnecting, giving up, and the supervisor that restarts it. Thread bodies
run in the test's thread; the fake Redis ends a read loop through the
shutdown event when the channel runs dry."""

import json
import logging
from collections import Counter
from typing import Any, List, Optional

import pytest

from osism.services.bridge.link import RedisLink
from osism.services.bridge import subscriber as subscriber_module
from osism.services.bridge.subscriber import Subscriber, pass_on
from osism.services.retry import Backoff
from tests.unit.services.bridge_doubles import FakeClock, FakeShutdown, FakeThread
from tests.unit.services.bridge_log_lines import debug, error, info, warning

CHANNEL = "osism:events"
ORIGIN = "own-origin"
EVENT = {"event_type": "baremetal.node.power_set.end", "payload": {"a": 1}}
SUBSCRIBED = info("Subscribed to Redis channel osism:events")
RESUBSCRIBED = info("Subscribed to Redis channel osism:events again")
STOPPED = info("Redis subscriber stopped")
GIVING_UP = error("Max Redis reconnection attempts reached, giving up")
REFUSED = error("Failed to connect to Redis: refused")
BACK = [info("Redis is back after 1.0 s"), info("Connected to Redis at redis:6379/0")]


def without_connects(lines: List[Any]) -> List[Any]:
    """The log lines less the link's (connected, back after an outage)."""
    return [
        line
        for line in lines
        if not line[2].startswith(("Connected to Redis", "Redis is back after"))
    ]


def attempt(number: int, of: int, reason: str):
    return error(f"Redis subscriber error (attempt {number}/{of}): {reason}")


def restarting(delay: str):
    return warning(f"Restarting the Redis subscriber in {delay} s")


class Reading:
    """A subscriber on the fake Redis and what it delivered."""

    def __init__(
        self, fake_redis: Any, max_retries: int = 5, stop_after: Optional[int] = None
    ) -> None:
        self.fake_redis = fake_redis
        # What the stand-in runs of a supervised subscriber do, in turn.
        self.outcomes: List[Any] = []
        self.runs: List[bool] = []
        self.clock = FakeClock(1_700_000_000.0)
        self.shutdown = FakeShutdown(self.clock, stop_after)
        self.link = RedisLink("redis", 6379, 0, CHANNEL, 5.0, True, clock=self.clock)
        self.delivered: List[Any] = []
        self.stats: "Counter[str]" = Counter()
        self.subscriber = Subscriber(
            self.link,
            ORIGIN,
            max_retries,
            1.0,
            Backoff(1.0, 5.0),
            self.shutdown,
            self.stats,
            reconnect=self.reconnect,
            deliver=self.delivered.append,
            answer_within=5.0,
            clock=self.clock,
        )
        self.subscriber.adopt(self.link.connect(serving=True))
        self.publisher = fake_redis.client()

    def reconnect(self) -> None:
        self.subscriber.adopt(self.link.connect(serving=True))

    def publish(self, *messages: Any) -> None:
        for message in messages:
            data = message if isinstance(message, str) else json.dumps(message)
            self.publisher.publish(CHANNEL, data)

    def end_when_idle(self) -> None:
        self.fake_redis.when_idle = self.shutdown.set


@pytest.fixture
def reading(fake_redis, bridge_logs, caplog) -> Reading:
    made = Reading(fake_redis)
    caplog.clear()
    return made


class TestReading:
    def test_without_a_pubsub_it_logs_an_error_and_returns_at_once(
        self, fake_redis, bridge_logs
    ):
        fake_redis.go_down()
        reading = Reading(fake_redis)

        reading.subscriber.listen()

        assert bridge_logs()[-1] == error(
            "Redis subscriber not initialised, not subscribing"
        )

    def test_it_subscribes_reads_until_shutdown_and_closes(
        self, reading, fake_redis, bridge_logs
    ):
        pubsub = reading.subscriber.pubsub
        reading.end_when_idle()

        reading.subscriber.listen()

        assert pubsub.closed is True
        assert pubsub.read_timeouts == [1.0, 1.0]
        assert reading.subscriber.connected is True
        assert bridge_logs() == [SUBSCRIBED, STOPPED]

    def test_it_counts_as_connected_once_subscribed_and_not_while_reconnecting(
        self, reading, fake_redis
    ):
        """What health reports as redis_connected."""
        seen = []
        pubsub = reading.subscriber.pubsub
        read = pubsub.get_message
        original_wait = reading.shutdown.wait

        def get_message(timeout):
            seen.append(("read", reading.subscriber.connected))
            return read(timeout)

        pubsub.get_message = get_message
        steps = [
            lambda: fake_redis.fail_next("pubsub.get_message", ConnectionError("a")),
            lambda: fake_redis.fail_next("pubsub.get_message", ConnectionError("b")),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()
        resubscribes = [None, ConnectionError("down")]

        def wait_then_fail_resubscribing(timeout=None):
            seen.append(("wait", reading.subscriber.connected))
            if resubscribes.pop(0) is not None:
                fake_redis.fail_next("pubsub.subscribe", ConnectionError("down"))
            return original_wait(timeout)

        reading.shutdown.wait = wait_then_fail_resubscribing

        reading.subscriber.listen()

        # Subscribed, reading (the confirmation, an empty read, a failing
        # one); not connected while waiting; subscribed again, connected at
        # the next reads; after the next failure subscribing again fails: not
        # connected until a read succeeds.
        assert seen == [
            *[("read", True)] * 3,
            ("wait", False),
            *[("read", True)] * 3,
            ("wait", False),
            ("read", False),
        ]
        assert reading.subscriber.connected is True
        assert reading.link.last_error == "b"

    def test_events_are_delivered_in_order_and_other_entries_ignored(
        self, reading, bridge_logs
    ):
        reading.subscriber.pubsub.subscribe(CHANNEL)
        second = {**EVENT, "publisher_id": "ironic-conductor.host1"}
        reading.publish(EVENT, second)
        reading.end_when_idle()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT, second]
        assert reading.stats == Counter()

    def test_an_event_carrying_its_own_origin_is_skipped_and_counted(
        self, reading, bridge_logs
    ):
        reading.subscriber.pubsub.subscribe(CHANNEL)
        theirs = {**EVENT, "origin": "another-bridge"}
        reading.publish({**EVENT, "origin": ORIGIN}, theirs)
        reading.end_when_idle()

        reading.subscriber.listen()

        reading.subscriber.handle(json.dumps({**EVENT, "origin": ORIGIN}))

        assert reading.delivered == [theirs]
        assert reading.stats == Counter({"own_skipped": 2})
        assert bridge_logs() == [SUBSCRIBED, STOPPED]

    def test_invalid_json_is_logged_counted_and_skipped(self, reading, bridge_logs):
        reading.subscriber.pubsub.subscribe(CHANNEL)
        reading.publish("not json", "{", EVENT)
        reading.end_when_idle()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert reading.stats == Counter({"invalid": 2})
        assert bridge_logs()[1:3] == [
            error(
                "Failed to decode Redis message as JSON: "
                "Expecting value: line 1 column 1 (char 0)"
            ),
            error(
                "Failed to decode Redis message as JSON: "
                "Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)"
            ),
        ]

    def test_json_that_is_not_an_event_is_logged_counted_and_skipped(
        self, reading, bridge_logs
    ):
        reading.subscriber.handle('{"payload": {}}')
        reading.subscriber.handle('{"payload": {}}')

        assert reading.delivered == []
        assert reading.stats == Counter({"invalid": 2})
        assert (
            bridge_logs()
            == [
                error(
                    "Skipping Redis message that is not an event: "
                    "missing or non-string 'event_type'"
                )
            ]
            * 2
        )

    def test_a_failing_delivery_is_logged_counted_and_reading_goes_on(
        self, fake_redis, bridge_logs, caplog
    ):
        reading = Reading(fake_redis)
        failures = [RuntimeError("boom"), RuntimeError("boom")]

        def deliver(event):
            if failures:
                raise failures.pop()
            reading.delivered.append(event)

        reading.subscriber.deliver = deliver
        reading.subscriber.pubsub.subscribe(CHANNEL)
        reading.publish(EVENT, EVENT, EVENT)
        reading.end_when_idle()
        caplog.clear()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert reading.stats == Counter({"dropped": 2})
        assert bridge_logs() == [
            SUBSCRIBED,
            error("Error processing Redis event: boom"),
            error("Error processing Redis event: boom"),
            STOPPED,
        ]

    def test_a_failing_close_is_logged_at_debug_level_and_swallowed(
        self, reading, fake_redis, bridge_logs
    ):
        fake_redis.fail_next("pubsub.close", OSError("gone"))
        reading.end_when_idle()

        reading.subscriber.listen()

        assert bridge_logs() == [
            SUBSCRIBED,
            debug("Closing the Redis subscriber failed: gone"),
            STOPPED,
        ]


class TestARedisThatStopsAnswering:
    """SIGSTOP: no error, no message; only a ping that is not answered
    shows it."""

    def test_a_quiet_redis_is_pinged_and_an_answer_is_enough(
        self, reading, fake_redis, bridge_logs
    ):
        steps = [lambda: reading.clock.advance(1.5)] * 3 + [reading.shutdown.set]
        fake_redis.when_idle = lambda: steps.pop(0)()

        pubsub = reading.subscriber.pubsub

        reading.subscriber.listen()

        assert pubsub.pings >= 2
        assert reading.stats["redis_errors"] == 0
        assert bridge_logs() == [SUBSCRIBED, STOPPED]

    def test_no_answer_within_the_bound_is_an_outage(
        self, reading, fake_redis, bridge_logs
    ):
        pubsub = reading.subscriber.pubsub
        fake_redis.frozen = True
        steps = [
            lambda: reading.clock.advance(1.0),
            lambda: reading.clock.advance(2.0),
            lambda: reading.clock.advance(3.5),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert pubsub.pings == 1
        # The unanswered ping is the first error; reconnecting to the frozen
        # Redis times out, so the outage lasts (and health says degraded).
        errors = [line for line in bridge_logs() if line[1] >= logging.ERROR]
        assert errors[0] == attempt(1, 5, "Redis did not answer a ping within 5 s")
        assert reading.link.outage() is not None
        assert reading.subscriber.connected is False

    def test_an_answer_that_comes_within_the_bound_is_in_time(
        self, reading, fake_redis, bridge_logs
    ):
        fake_redis.frozen = True

        def answers_again() -> None:
            fake_redis.frozen = False
            reading.publish(EVENT)

        steps = [
            lambda: reading.clock.advance(1.0),
            # Pinged now; no answer for 2 s, then 3 s more: 5 s, the bound.
            lambda: reading.clock.advance(2.0),
            lambda: reading.clock.advance(3.0),
            answers_again,
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert reading.stats["redis_errors"] == 0
        assert reading.link.outage() is None
        assert bridge_logs() == [SUBSCRIBED, STOPPED]


class TestCatchingUpAfterSubscribing:
    def test_every_subscribe_that_succeeded_is_reported(
        self, reading, fake_redis, bridge_logs
    ):
        subscribed: List[bool] = []
        reading.subscriber.on_subscribed = lambda: subscribed.append(
            reading.subscriber.connected
        )
        steps = [
            lambda: fake_redis.fail_next("pubsub.get_message", ConnectionError("a")),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        # Once on entry, once after the reconnect; connected both times.
        assert subscribed == [True, True]
        assert RESUBSCRIBED in bridge_logs()

    def test_a_broken_subscription_is_reported_before_it_is_subscribed_again(
        self, reading, fake_redis
    ):
        told: List[str] = []
        reading.subscriber.on_subscribed = lambda: told.append("subscribed")
        reading.subscriber.on_lost = lambda: told.append("lost")
        steps = [
            lambda: fake_redis.fail_next("pubsub.get_message", ConnectionError("a")),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert told == ["subscribed", "lost", "subscribed"]


class TestReconnecting:
    def test_a_read_error_waits_the_retry_delay_reconnects_and_resubscribes(
        self, reading, fake_redis, bridge_logs
    ):
        fake_redis.fail_next("pubsub.get_message", ConnectionError("lost"))
        reading.end_when_idle()

        reading.subscriber.listen()

        assert reading.shutdown.waits == [1.0]
        assert reading.stats == Counter({"redis_errors": 1})
        assert bridge_logs() == [
            SUBSCRIBED,
            attempt(1, 5, "lost"),
            *BACK,
            RESUBSCRIBED,
            STOPPED,
        ]

    def test_after_a_redis_restart_it_subscribes_again_and_reads_on(
        self, reading, fake_redis, bridge_logs
    ):
        steps = [
            fake_redis.restart,
            lambda: reading.publish(EVENT),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert reading.shutdown.waits == [1.0]
        assert attempt(1, 5, "Connection closed by server.") in bridge_logs()
        assert RESUBSCRIBED in bridge_logs()

    def test_max_retries_failures_in_a_row_give_up(
        self, reading, fake_redis, bridge_logs
    ):
        fake_redis.fail_next("pubsub.get_message", *[ConnectionError("lost")] * 5)

        reading.subscriber.listen()

        assert reading.shutdown.waits == [1.0] * 4
        assert not reading.shutdown.is_set()
        assert reading.stats == Counter({"redis_errors": 5})
        assert without_connects(bridge_logs()) == [
            SUBSCRIBED,
            *[
                line
                for n in range(1, 5)
                for line in (attempt(n, 5, "lost"), RESUBSCRIBED)
            ],
            attempt(5, 5, "lost"),
            GIVING_UP,
            STOPPED,
        ]

    def test_a_successful_read_resets_the_count(self, reading, fake_redis):
        lost = [ConnectionError("lost")] * 4
        results: List[Any] = [*lost, None, *lost]

        def get_message(timeout):
            if results:
                result = results.pop(0)
                if isinstance(result, BaseException):
                    raise result
                return result
            reading.shutdown.set()
            return None

        reading.subscriber.pubsub.get_message = get_message

        reading.subscriber.listen()

        assert reading.stats == Counter({"redis_errors": 8})
        assert reading.shutdown.waits == [1.0] * 8

    def test_retry_limit_and_delay_are_the_subscribers(
        self, reading, fake_redis, bridge_logs
    ):
        reading.subscriber.max_retries = 2
        reading.subscriber.retry_delay = 0.25
        fake_redis.fail_next("pubsub.get_message", *[ConnectionError("lost")] * 2)

        reading.subscriber.listen()

        assert reading.shutdown.waits == [0.25]
        assert bridge_logs()[-3:] == [attempt(2, 2, "lost"), GIVING_UP, STOPPED]

    def test_an_error_while_shutting_down_ends_it_without_reconnecting(
        self, reading, fake_redis, bridge_logs
    ):
        def closed_under_us(timeout):
            reading.shutdown.set()
            raise ConnectionError("closed")

        reading.subscriber.pubsub.get_message = closed_under_us

        reading.subscriber.listen()

        assert reading.shutdown.waits == []
        assert reading.stats == Counter()
        assert bridge_logs() == [SUBSCRIBED, STOPPED]

    def test_a_reconnect_without_redis_counts_further_failures(
        self, reading, fake_redis, bridge_logs
    ):
        fake_redis.when_idle = lambda: fake_redis.go_down(ConnectionError("lost"))

        reading.subscriber.listen()

        assert reading.subscriber.pubsub is None
        assert reading.stats == Counter({"redis_errors": 5})
        failed = error("Failed to connect to Redis: lost")
        assert bridge_logs() == [
            SUBSCRIBED,
            attempt(1, 5, "lost"),
            failed,
            *[
                line
                for n in range(2, 5)
                for line in (attempt(n, 5, "not connected to Redis"), failed)
            ],
            attempt(5, 5, "not connected to Redis"),
            GIVING_UP,
            STOPPED,
        ]

    def test_a_failed_resubscribe_is_logged_at_debug_and_reading_goes_on(
        self, reading, fake_redis, bridge_logs
    ):
        seen = []
        original_wait = reading.shutdown.wait

        def wait(timeout=None):
            seen.append(reading.subscriber.connected)
            fake_redis.fail_next("pubsub.subscribe", ConnectionError("down"))
            return original_wait(timeout)

        reading.shutdown.wait = wait
        reading.end_when_idle()
        fake_redis.fail_next("pubsub.get_message", ConnectionError("lost"))

        reading.subscriber.listen()

        assert seen == [False]
        assert reading.subscriber.connected is True
        assert debug("Subscribing again failed: down") in bridge_logs()
        assert RESUBSCRIBED not in bridge_logs()
        assert reading.link.outage() is None


@pytest.fixture
def supervised(fake_redis, bridge_logs, caplog):
    """A subscriber whose runs are stand-ins: each records whether it started
    disconnected, then does what the test says."""
    reading = Reading(fake_redis)

    def run() -> None:
        reading.runs.append(reading.subscriber.connected)
        if reading.outcomes:
            outcome = reading.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            outcome()

    reading.subscriber.listen = run  # type: ignore[method-assign]
    caplog.clear()
    return reading


class TestSupervising:
    def test_a_loop_that_gives_up_is_restarted_after_a_doubling_cool_down(
        self, supervised, bridge_logs
    ):
        supervised.shutdown.stop_after = 5

        supervised.subscriber.supervise()

        assert len(supervised.runs) == 5
        assert supervised.shutdown.waits == [1.0, 2.0, 4.0, 5.0, 5.0]
        assert supervised.stats == Counter({"subscriber_restarts": 5})
        assert without_connects(bridge_logs()) == [
            restarting(d) for d in ("1", "2", "4", "5", "5")
        ]

    def test_a_subscribed_run_starts_the_cool_down_from_the_first_delay(
        self, supervised
    ):
        supervised.shutdown.stop_after = 4

        def subscribed():
            supervised.subscriber.connected = True

        supervised.outcomes.extend([lambda: None, lambda: None, subscribed])
        supervised.subscriber.connected = True

        cooling_down = []
        original_wait = supervised.shutdown.wait

        def wait(timeout=None):
            cooling_down.append(supervised.subscriber.connected)
            return original_wait(timeout)

        supervised.shutdown.wait = wait

        supervised.subscriber.supervise()

        assert supervised.runs == [False, False, False, False]
        assert supervised.shutdown.waits == [1.0, 2.0, 1.0, 2.0]
        assert cooling_down == [False] * 4

    def test_an_exception_from_the_loop_is_logged_counted_and_restarted(
        self, supervised, bridge_logs
    ):
        supervised.shutdown.stop_after = 2
        supervised.outcomes.extend([RuntimeError("boom"), RuntimeError("boom")])

        supervised.subscriber.supervise()

        assert len(supervised.runs) == 2
        assert supervised.stats == Counter(
            {"redis_errors": 2, "subscriber_restarts": 2}
        )
        assert supervised.link.last_error == "boom"
        assert without_connects(bridge_logs()) == [
            error("Redis subscriber failed: boom"),
            restarting("1"),
            error("Redis subscriber failed: boom"),
            restarting("2"),
        ]

    def test_it_reconnects_before_each_restart(self, supervised, fake_redis):
        supervised.shutdown.stop_after = 2
        fake_redis.go_down()
        supervised.subscriber.pubsub = None
        supervised.outcomes.append(lambda: fake_redis.come_back())

        supervised.subscriber.supervise()

        assert supervised.subscriber.pubsub is not None
        assert len(supervised.runs) == 2

    def test_shutdown_while_the_loop_runs_ends_it_without_a_restart(
        self, supervised, bridge_logs
    ):
        supervised.outcomes.append(supervised.shutdown.set)

        supervised.subscriber.supervise()

        assert len(supervised.runs) == 1
        assert supervised.shutdown.waits == []
        assert supervised.stats == Counter()
        assert bridge_logs() == []

    def test_a_loop_failing_during_shutdown_is_not_restarted(
        self, supervised, bridge_logs
    ):
        def fail_while_stopping():
            supervised.shutdown.set()
            raise RuntimeError("closed")

        supervised.outcomes.append(fail_while_stopping)

        supervised.subscriber.supervise()

        assert supervised.shutdown.waits == []
        assert "subscriber_restarts" not in supervised.stats
        assert bridge_logs() == [error("Redis subscriber failed: closed")]

    def test_shutdown_before_it_starts_runs_nothing(self, supervised):
        supervised.shutdown.set()

        supervised.subscriber.supervise()

        assert supervised.runs == []


class TestOwningThePubsub:
    @pytest.mark.parametrize(
        "make_thread",
        [
            pytest.param(lambda: None, id="no-subscriber-thread"),
            pytest.param(
                lambda: FakeThread(lambda: None, "subscriber"), id="thread-alive"
            ),
        ],
    )
    def test_whose_it_is(self, reading, make_thread):
        thread = make_thread()
        reading.subscriber.thread = thread

        assert reading.subscriber.owned_here() is (thread is None)

    def test_a_finished_thread_leaves_it_to_anyone(self, reading):
        thread = FakeThread(lambda: None, "subscriber")
        thread.run()
        reading.subscriber.thread = thread

        assert reading.subscriber.owned_here() is True

    def test_the_running_subscriber_thread_owns_it(self, reading):
        owned = []
        thread = FakeThread(lambda: owned.append(reading.subscriber.owned_here()), "s")
        reading.subscriber.thread = thread

        thread.run()

        assert owned == [True]

    def test_a_connected_client_gives_a_new_pubsub_only_when_there_is_none(
        self, reading, fake_redis
    ):
        pubsub = reading.subscriber.pubsub
        reading.subscriber.adopt(reading.link.client)
        assert reading.subscriber.pubsub is pubsub

        reading.subscriber.drop()
        reading.subscriber.adopt(reading.link.client)

        assert reading.subscriber.pubsub is fake_redis.pubsubs[-1]
        assert reading.subscriber.pubsub is not pubsub
        assert pubsub.closed is True

    def test_the_pubsub_passes_messages_on_without_redis_pys_debug_line(
        self, reading, fake_redis
    ):
        reading.subscriber.drop()
        reading.subscriber.adopt(reading.link.client)

        handler = fake_redis.pubsubs[-1].push_handler_func
        assert handler is pass_on
        message = [b"message", b"osism:events", b"{}"]
        assert pass_on(message) is message

    def test_no_client_drops_and_closes_the_pubsub(self, reading, bridge_logs):
        pubsub = reading.subscriber.pubsub

        reading.subscriber.adopt(None)

        assert reading.subscriber.pubsub is None
        assert pubsub.closed is True
        assert bridge_logs() == []


class TestStarting:
    def test_the_supervisor_runs_in_the_subscriber_thread(self, reading, threads):
        reading.subscriber.start()

        [thread] = threads
        assert reading.subscriber.thread is thread
        assert thread.name == "osism-event-bridge-subscriber"
        assert thread.target == reading.subscriber.supervise


class FakeLoopReader:
    """LoopReader's stand-in: what the loop would read happens when the
    thread waits (reads of timeout 0 on the fake pub/sub, whose errors reach
    the waiting thread as a failed loop read would)."""

    made: List["FakeLoopReader"] = []
    takes = True

    def __init__(self, loop: Any, take: Any, batch_interval: float) -> None:
        self.loop = loop
        self.take = take
        self.batch_interval = batch_interval
        self.pubsub: Any = None
        self.attached: List[Any] = []
        self.detached = 0
        self.pings = 0
        self.made.append(self)

    def attach(self, pubsub: Any) -> bool:
        self.attached.append(pubsub)
        if self.takes:
            self.pubsub = pubsub
        return self.takes

    def wait(self, timeout: float) -> None:
        assert timeout == 1.0
        try:
            while True:
                message = self.pubsub.get_message(timeout=0)
                if message is None:
                    return
                self.take(message)
        except Exception:
            self.detach()
            raise

    def ping(self) -> None:
        self.pings += 1
        self.pubsub.ping()

    def detach(self) -> None:
        assert self.pubsub is None or not self.pubsub.closed, "closed before detached"
        self.detached += self.pubsub is not None
        self.pubsub = None


class FakeLoop:
    def __init__(self, running: bool = True) -> None:
        self.running = running

    def is_running(self) -> bool:
        return self.running


@pytest.fixture
def loop_readers(monkeypatch) -> List[FakeLoopReader]:
    monkeypatch.setattr(FakeLoopReader, "made", [])
    monkeypatch.setattr(subscriber_module, "LoopReader", FakeLoopReader)
    return FakeLoopReader.made


class TestReadingOnTheLoop:
    """Where the WebSocket manager runs a loop, the loop reads the channel
    and the thread supervises."""

    def test_the_loop_reads_and_the_thread_waits_for_it(
        self, reading, fake_redis, loop_readers, bridge_logs
    ):
        loop = FakeLoop()
        reading.subscriber.loop_of = lambda: loop
        pubsub = reading.subscriber.pubsub
        steps = [
            lambda: reading.publish(EVENT, {**EVENT, "payload": {"b": 2}}),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT, {**EVENT, "payload": {"b": 2}}]
        [reader] = loop_readers
        assert reader.loop is loop and reader.attached == [pubsub]
        assert reader.batch_interval == 0.0
        # Only the loop read (timeout 0), never the thread (READ_TIMEOUT).
        assert set(pubsub.read_timeouts) == {0}
        # Let go before the pub/sub was closed (FakeLoopReader.detach checks).
        assert reader.detached == 1 and pubsub.closed
        assert reading.subscriber.connected is True
        assert bridge_logs() == [SUBSCRIBED, STOPPED]

    def test_a_loop_that_does_not_run_leaves_the_reading_to_the_thread(
        self, reading, loop_readers
    ):
        reading.subscriber.loop_of = lambda: FakeLoop(running=False)
        pubsub = reading.subscriber.pubsub
        steps = [lambda: reading.publish(EVENT), reading.shutdown.set]
        reading.fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert loop_readers == []
        assert set(pubsub.read_timeouts) == {1.0}

    def test_a_loop_that_does_not_take_the_pubsub_leaves_it_to_the_thread(
        self, reading, loop_readers, monkeypatch
    ):
        monkeypatch.setattr(FakeLoopReader, "takes", False)
        loop = FakeLoop()
        reading.subscriber.loop_of = lambda: loop
        pubsub = reading.subscriber.pubsub
        steps = [lambda: reading.publish(EVENT), reading.shutdown.set]
        reading.fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        assert set(pubsub.read_timeouts) == {1.0}
        # Asked once per read, kept for the loop it was made for.
        assert len(loop_readers) == 1 and len(loop_readers[0].attached) >= 2

    def test_a_failed_loop_read_reconnects_and_the_new_pubsub_is_read_there(
        self, reading, fake_redis, loop_readers, bridge_logs
    ):
        loop = FakeLoop()
        reading.subscriber.loop_of = lambda: loop
        first = reading.subscriber.pubsub
        steps = [
            fake_redis.restart,
            lambda: reading.publish(EVENT),
            reading.shutdown.set,
        ]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        # The same loop keeps its reader, which the resubscribed pub/sub is
        # handed to again after the failed read let go of it.
        [reader] = loop_readers
        assert reader.attached == [first, first]
        assert reader.detached == 2
        assert attempt(1, 5, "Connection closed by server.") in bridge_logs()
        assert RESUBSCRIBED in bridge_logs()

    def test_a_new_loop_gets_a_reader_of_its_own(self, reading, loop_readers):
        loops = [FakeLoop(), FakeLoop()]
        reading.subscriber.loop_of = lambda: loops[0]
        steps = [lambda: loops.pop(0), reading.shutdown.set]
        reading.fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert [len(r.attached) for r in loop_readers] == [1, 1]
        assert loop_readers[0].loop is not loop_readers[1].loop
        assert loop_readers[0].detached == 1

    def test_a_loop_that_stopped_has_the_thread_read_again(self, reading, loop_readers):
        loop = FakeLoop()
        reading.subscriber.loop_of = lambda: loop
        pubsub = reading.subscriber.pubsub

        def stop_the_loop() -> None:
            loop.running = False

        steps = [
            stop_the_loop,
            lambda: reading.publish(EVENT),
            reading.shutdown.set,
        ]
        reading.fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert reading.delivered == [EVENT]
        [reader] = loop_readers
        assert reader.detached == 1
        assert 1.0 in pubsub.read_timeouts

    def test_a_quiet_redis_is_pinged_from_the_loop(
        self, reading, fake_redis, loop_readers, bridge_logs
    ):
        loop = FakeLoop()
        reading.subscriber.loop_of = lambda: loop
        steps = [lambda: reading.clock.advance(1.5)] * 3 + [reading.shutdown.set]
        fake_redis.when_idle = lambda: steps.pop(0)()

        reading.subscriber.listen()

        assert loop_readers[0].pings >= 2
        assert reading.stats["redis_errors"] == 0
        assert bridge_logs() == [SUBSCRIBED, STOPPED]
