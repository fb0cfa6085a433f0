"""Redis outages under running API servers and a listener-side publisher.

Each test has a redis-server of its own, which it stops and starts again on
the same port. The processes get shortened retry settings (FAST) so that an
outage longer than the subscriber's whole retry budget takes about a second.
"""

import contextlib
import signal
import time
from typing import Any, Dict, List

import anyio
import pytest

from tests.harness.clients import get_health, open_stream, post_event, wait_for_health
from tests.harness.notifications import ironic
from tests.harness.proc_stats import thread_count
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# Retry budget of the subscriber loop: 2 attempts 0.2 s apart; restarts of
# the loop and the publisher's reconnects back off from 0.2 s up to 1 s.
FAST = {
    "REDIS_RETRY_DELAY": "0.2",
    "REDIS_MAX_RETRIES": "2",
    "REDIS_RESTART_MAX_DELAY": "1",
}
# The promise: streaming resumes within 10 s of Redis being back.
RESUME_DEADLINE = 10.0
NODE = "node1"


def numbered(n: int) -> Dict[str, Any]:
    return ironic("power_set.end", NODE, f"seq-{n}")


def sequence(frames: List[Dict[str, Any]]) -> List[str]:
    return [frame["data"]["resource_id"] for frame in frames]


def seq(*numbers: int) -> List[str]:
    return [f"seq-{n}" for n in numbers]


def degraded(health: Dict[str, Any]) -> bool:
    return health["status"] == "degraded" and health["bridge"]["outage"] is not None


def recovered(health: Dict[str, Any]) -> bool:
    bridge = health["bridge"]
    return (
        health["status"] == "ok"
        and bridge["redis_connected"]
        and bridge["outage"] is None
        and bridge["buffered"] == 0
    )


async def publish_through_outage(server, publisher, first: int, seconds: float):
    """Keep handing numbered events to the publisher while Redis is down, for
    at least ``seconds`` and until the API's health shows the outage; checks
    that, once shown, it stays shown. The numbers published."""
    numbers: List[int] = []
    started = time.monotonic()
    shown = False
    while not shown or time.monotonic() - started < seconds:
        number = first + len(numbers)
        await anyio.to_thread.run_sync(publisher.publish, *numbered(number).values())
        numbers.append(number)
        health = await get_health(server)
        assert degraded(health) or not shown, health
        shown = shown or degraded(health)
        assert time.monotonic() - started < 10, "the API never showed the outage"
    return numbers


class TestAOneSecondOutage:
    @pytest.mark.timeout(40)
    @pytest.mark.anyio
    async def test_events_kept_by_the_publisher_arrive_in_order_once_redis_is_back(
        self, own_redis_server, api_server, publisher
    ):
        redis = own_redis_server
        server = api_server("redis", redis_server=redis, env=FAST)
        listener = publisher(redis, server.channel, **FAST)
        async with open_stream(server.ws_url, node_filters=[NODE]) as stream:
            for n in range(1, 4):
                listener.publish(*numbered(n).values())
            before = await stream.receive_until(lambda f: sequence([f]) == seq(3))
            assert sequence(before) == seq(1, 2, 3)

            await anyio.to_thread.run_sync(redis.stop)
            during = await publish_through_outage(server, listener, 4, seconds=1.0)
            kept = listener.health()
            assert kept["buffered"] == len(during)
            assert kept["outage"] is not None

            await anyio.to_thread.run_sync(redis.start)
            frames = await stream.receive_until(
                lambda f: sequence([f]) == seq(during[-1]), timeout=RESUME_DEADLINE
            )
            assert sequence(frames) == seq(*during)

            after = len(during) + 4
            listener.publish(*numbered(after).values())
            assert sequence([await stream.receive()]) == seq(after)
        await wait_for_health(server, recovered, timeout=RESUME_DEADLINE)
        assert listener.health()["buffered"] == 0
        assert listener.health()["outage"] is None


class TestAnOutageLongerThanTheRetryBudget:
    @pytest.mark.timeout(50)
    @pytest.mark.anyio
    async def test_every_api_resumes_and_gets_what_was_kept_for_it(
        self, own_redis_server, api_server, publisher
    ):
        """Two API servers on one Redis. While Redis is down the subscriber
        loops give up and are restarted; an event POSTed to API a reaches
        a's clients at once and b's once Redis is back, like everything
        the listener-side publisher kept."""
        redis = own_redis_server
        a = api_server("redis", redis_server=redis, env=FAST)
        b = api_server("redis", redis_server=redis, env=FAST, channel=a.channel)
        listener = publisher(redis, a.channel, **FAST)
        async with open_stream(a.ws_url) as on_a, open_stream(b.ws_url) as on_b:
            listener.publish(*numbered(1).values())
            for stream in (on_a, on_b):
                assert sequence([await stream.receive()]) == seq(1)

            await anyio.to_thread.run_sync(redis.stop)
            during = await publish_through_outage(a, listener, 2, seconds=0.5)
            for server in (a, b):
                await wait_for_health(
                    server,
                    lambda h: h["bridge"]["counters"].get("subscriber_restarts", 0)
                    >= 2,
                    timeout=10,
                )
            ingested = ironic("power_set.end", "node-ingested", "ingested")
            await post_event(a, **ingested)
            local = await on_a.receive()
            assert local["data"]["resource_id"] == "ingested"

            await anyio.to_thread.run_sync(redis.start)
            got_a = await receive_all(on_a, seq(during[-1]))
            got_b = await receive_all(on_b, seq(during[-1]) + ["ingested"])
            assert sequence(got_a) == seq(*during)
            assert [n for n in sequence(got_b) if n != "ingested"] == seq(*during)
            assert sequence(got_b).count("ingested") == 1

            # API a published the ingested event for b and skipped it itself:
            # it is not in a's stream before the next event.
            marker = during[-1] + 1
            listener.publish(*numbered(marker).values())
            assert sequence(await receive_all(on_a, seq(marker))) == seq(marker)
            assert sequence(await receive_all(on_b, seq(marker))) == seq(marker)
        health_a = await wait_for_health(a, recovered, timeout=RESUME_DEADLINE)
        assert health_a["bridge"]["counters"]["own_skipped"] == 1
        await wait_for_health(b, recovered, timeout=RESUME_DEADLINE)


async def receive_all(stream, wanted: List[str]) -> List[Dict[str, Any]]:
    """Frames until every resource id in ``wanted`` has been seen."""
    frames: List[Dict[str, Any]] = []
    missing = set(wanted)
    with anyio.fail_after(RESUME_DEADLINE):
        while missing:
            frames.append(await stream.receive(RESUME_DEADLINE))
            missing.discard(frames[-1]["data"]["resource_id"])
    return frames


class TestTheOutageBuffer:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_beyond_its_bound_the_oldest_events_are_dropped_counted_and_logged(
        self, own_redis_server, api_server, publisher
    ):
        redis = own_redis_server
        server = api_server("redis", redis_server=redis, env=FAST)
        listener = publisher(redis, server.channel, REDIS_BUFFER_SIZE="5", **FAST)
        async with open_stream(server.ws_url, node_filters=[NODE]) as stream:
            await anyio.to_thread.run_sync(redis.stop)
            for n in range(1, 9):
                listener.publish(*numbered(n).values())
            kept = listener.health()
            assert kept["buffered"] == 5
            assert kept["counters"]["buffer_dropped"] == 3

            await anyio.to_thread.run_sync(redis.start)
            frames = await receive_all(stream, seq(8))
        assert sequence(frames) == seq(4, 5, 6, 7, 8)
        log = listener.output()
        full = "The Redis buffer is full (5 events): dropping the oldest"
        assert log.count(full) == 1
        assert log.count("3 events were dropped while Redis could not take them") == 1


class TestAPublisherStartedWhileRedisIsDown:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_connects_later_and_publishes_what_it_kept(
        self, own_redis_server, api_server, publisher
    ):
        redis = own_redis_server
        server = api_server("redis", redis_server=redis, env=FAST)
        async with open_stream(server.ws_url, node_filters=[NODE]) as stream:
            await anyio.to_thread.run_sync(redis.stop)
            listener = publisher(redis, server.channel, **FAST)
            for n in range(1, 4):
                listener.publish(*numbered(n).values())
            assert "Failed to connect to Redis" in listener.output()
            assert listener.health()["mode"] == "embedded"

            await anyio.to_thread.run_sync(redis.start)
            frames = await receive_all(stream, seq(3))
        assert sequence(frames) == seq(1, 2, 3)
        health = listener.health()
        assert health["mode"] == "redis"
        assert health["counters"]["reconnects"] >= 1


def api_connections(redis_server, kind=None) -> List[Dict[str, Any]]:
    """The Redis connections (of ``kind``) of everybody but the caller."""
    with contextlib.closing(redis_server.client()) as client:
        own = client.client_id()
        return [c for c in client.client_list(_type=kind) if int(c["id"]) != own]


def kill_connections(redis_server, kind: str) -> int:
    """Close the server side of every ``kind`` (pubsub/normal) connection but
    the caller's; how many were closed."""
    with contextlib.closing(redis_server.client()) as client:
        own = client.client_id()
        victims = [
            c["id"] for c in client.client_list(_type=kind) if int(c["id"]) != own
        ]
        for victim in victims:
            client.client_kill_filter(_id=victim)
    return len(victims)


class TestReconnecting:
    @pytest.mark.timeout(40)
    @pytest.mark.anyio
    async def test_leaks_no_connection_and_no_thread(
        self, own_redis_server, api_server
    ):
        redis = own_redis_server
        server = api_server("redis", redis_server=redis, env=FAST)
        assert server.process is not None
        async with open_stream(server.ws_url, node_filters=[NODE]) as stream:
            await post_event(server, **numbered(0))
            assert sequence([await stream.receive()]) == seq(0)
            connections = len(api_connections(redis))
            threads = thread_count(server.process.pid)

            for n in range(1, 6):
                assert kill_connections(redis, "pubsub") == 1
                await wait_until(lambda: redis.subscribers(server.channel) == 1, 10)
                await post_event(server, **numbered(n))
                assert sequence([await stream.receive()]) == seq(n)

            assert len(api_connections(redis)) <= connections
            assert thread_count(server.process.pid) <= threads
        counters = (await get_health(server))["bridge"]["counters"]
        assert counters["redis_errors"] >= 5

    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_a_failed_publish_in_the_api_leaves_its_subscriber_alone(
        self, own_redis_server, api_server
    ):
        """The API's ingest reconnects from a request thread while its
        subscriber thread reads: the pub/sub connection it reads is not
        closed or replaced under it. Redis pausing every client makes the
        publish and the reconnect time out while the idle pub/sub connection
        is not touched."""
        redis = own_redis_server
        env = {**FAST, "REDIS_SOCKET_TIMEOUT": "0.3"}
        server = api_server("redis", redis_server=redis, env=env)
        async with open_stream(server.ws_url, node_filters=[NODE]) as stream:
            await post_event(server, **numbered(1))
            assert sequence([await stream.receive()]) == seq(1)
            reader = [c["id"] for c in api_connections(redis, "pubsub")]

            with contextlib.closing(redis.client()) as client:
                client.client_pause(1500, all=True)
            await post_event(server, **numbered(2))
            assert sequence([await stream.receive()]) == seq(2)
            await wait_for_health(server, recovered, timeout=RESUME_DEADLINE)
            await post_event(server, **numbered(3))
            assert sequence([await stream.receive()]) == seq(3)
        output = server.output()
        assert "Failed to publish event baremetal.node.power_set.end to Redis: " in (
            output
        )
        assert "Failed to connect to Redis: Timeout" in output
        assert [c["id"] for c in api_connections(redis, "pubsub")] == reader
        health = await get_health(server)
        assert health["bridge"]["counters"].get("redis_errors", 0) == 0


class TestKeptEventsWaitForEverySubscriber:
    @pytest.mark.timeout(40)
    @pytest.mark.anyio
    async def test_a_late_api_still_gets_what_another_kept_for_it(
        self, own_redis_server, api_server
    ):
        """API b is frozen (SIGSTOP) while Redis comes back; API a, which
        knows two subscribers took its last event, holds what it kept until
        b has resubscribed."""
        redis = own_redis_server
        a = api_server("redis", redis_server=redis, env=FAST)
        b = api_server("redis", redis_server=redis, env=FAST, channel=a.channel)
        assert b.process is not None
        async with open_stream(a.ws_url) as on_a, open_stream(b.ws_url) as on_b:
            await post_event(a, **numbered(1))
            for stream in (on_a, on_b):
                assert sequence([await stream.receive()]) == seq(1)

            await anyio.to_thread.run_sync(redis.stop)
            await wait_for_health(b, degraded)
            await post_event(a, **numbered(2))
            assert sequence([await on_a.receive()]) == seq(2)
            b.process.send_signal(signal.SIGSTOP)
            try:
                await anyio.to_thread.run_sync(redis.start)
                await wait_until(
                    lambda: "Waiting up to 10 s for the Redis subscribers (1 of 2 "
                    "back)" in a.output(),
                    RESUME_DEADLINE,
                )
            finally:
                b.process.send_signal(signal.SIGCONT)
            assert sequence([await on_b.receive(RESUME_DEADLINE)]) == seq(2)
        await wait_for_health(a, recovered, timeout=RESUME_DEADLINE)
