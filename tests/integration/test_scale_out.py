"""Scale-out: API processes on one Redis share one stream. Each of them
delivers every event published on the channel, by a listener process or by
another API's ingest endpoint, to exactly its own clients whose filters
match: in order, none missing, none twice."""

import contextlib
import json
import sys
from typing import Any, Callable, Dict, Iterator, List, Tuple

import anyio
import pytest

from tests.harness.api_server import ApiServer
from tests.harness.clients import (
    EventStream,
    get_health,
    open_stream,
    post_event,
    wait_for_health,
)
from tests.harness.notifications import ironic, nova, summary
from tests.harness.ports import LOOPBACK
from tests.harness.processes import REPO_ROOT, clean_env
from tests.harness.redis_server import RedisServer, unique_channel
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis]

EVENTS = 200
PUBLISH_DEADLINE = 8.0

# The listener side: hands the events given as a JSON list on stdin to an
# EventBridge, as the listener's notification handlers do, and prints the
# bridge's counters.
LISTENER = """
import json, sys
from osism.services.event_bridge import EventBridge

events = json.load(sys.stdin)
bridge = EventBridge()
try:
    if not bridge.health()["redis_connected"]:
        sys.exit("the listener's event bridge is not connected to Redis")
    for event in events:
        bridge.add_event(event["event_type"], event["payload"])
finally:
    bridge.shutdown()
print(json.dumps(dict(bridge.stats)))
"""


def numbered(n: int) -> Dict[str, Any]:
    """Event number ``n``: Ironic on even, Nova on odd numbers, on node-0,
    node-1 and node-2 in turn; its resource id is ``ev-<n>``."""
    node = f"node-{n % 3}"
    if n % 2:
        return nova("update", node, f"ev-{n}")
    return ironic("power_set.end", node, f"ev-{n}")


def resource_ids(frames: List[Dict[str, Any]]) -> List[str]:
    return [f["data"]["resource_id"] for f in frames]


def publisher_env(redis_server: RedisServer, channel: str) -> Dict[str, str]:
    return clean_env(
        REDIS_HOST=LOOPBACK, REDIS_PORT=str(redis_server.port), REDIS_CHANNEL=channel
    )


async def publish_with_the_command(
    redis_server: RedisServer, channel: str, event: Dict[str, Any]
) -> None:
    """``osism events publish`` in a process of its own."""
    command = [sys.executable, "-m", "osism", "events", "publish"]
    command += [event["event_type"], "--payload", json.dumps(event["payload"])]
    with anyio.fail_after(PUBLISH_DEADLINE):
        result = await anyio.run_process(
            command,
            env=publisher_env(redis_server, channel),
            cwd=REPO_ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith(
        f"Published {event['event_type']} on Redis channel {channel} (id "
    )


async def publish_as_the_listener(
    redis_server: RedisServer, channel: str, events: List[Dict[str, Any]]
) -> Dict[str, int]:
    """EventBridge.add_event for each event, in a process of its own; the
    bridge's counters."""
    with anyio.fail_after(PUBLISH_DEADLINE):
        result = await anyio.run_process(
            [sys.executable, "-c", LISTENER],
            input=json.dumps(events).encode(),
            env=publisher_env(redis_server, channel),
            cwd=REPO_ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    counters: Dict[str, int] = json.loads(result.stdout)
    return counters


async def receive_events(
    stream: EventStream, last: str, who: str
) -> List[Dict[str, Any]]:
    """Frames up to and including the event with resource id ``last``."""
    try:
        return await stream.receive_until(
            lambda frame: frame["data"]["resource_id"] == last
        )
    except TimeoutError:
        raise pytest.fail.Exception(
            f"{who} did not get event {last} in time", pytrace=False
        )


def counters_of(health: Dict[str, Any]) -> Dict[str, int]:
    counters: Dict[str, int] = health["websocket"]["counters"]
    return counters


def increase(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, int]:
    """How much each WebSocket counter went up from one health to the next."""
    return {
        name: value - counters_of(before)[name]
        for name, value in counters_of(after).items()
    }


@pytest.fixture(scope="module")
def two_apis(redis_server, module_api_server) -> Iterator[Tuple[ApiServer, ApiServer]]:
    """Two API processes in Redis mode on the session's Redis and one channel,
    both subscribed to it. The tests share them, and look at how their
    counters change, never at absolute values."""
    channel = unique_channel()
    a = module_api_server("redis", channel=channel)
    b = module_api_server("redis", channel=channel)
    # Ready means subscribed for the second one only once Redis counts two
    # subscribers (one is already there when it starts).
    wait_for(
        lambda: redis_server.subscribers(channel) == 2,
        what="two subscribers on the channel",
    )
    yield a, b


def clients_are(count: int) -> Callable[[Dict[str, Any]], bool]:
    return lambda health: health["websocket"]["clients"] == count


class TestTwoApisOnOneRedisEachDeliverEveryEventToTheirOwnClients:
    @pytest.mark.timeout(20)
    @pytest.mark.anyio
    async def test_a_listener_process_reaches_every_matching_client_of_both_in_order_exactly_once(  # noqa: E501
        self, two_apis, redis_server
    ):
        a, b = two_apis
        events = [numbered(n) for n in range(EVENTS)]
        # The last event matches every client's filters, so that a client
        # that has it has had everything before it.
        last = f"ev-{EVENTS - 1}"
        assert events[-1] == nova("update", "node-1", last)

        clients: Dict[str, Tuple[ApiServer, Dict[str, List[str]]]] = {
            "everything on A": (a, {}),
            "node-1 on A": (a, {"node_filters": ["node-1"]}),
            "everything on B": (b, {}),
            "compute on B": (b, {"service_filters": ["compute"]}),
        }
        expected = {
            "everything on A": [f"ev-{n}" for n in range(EVENTS)],
            "node-1 on A": [f"ev-{n}" for n in range(EVENTS) if n % 3 == 1],
            "everything on B": [f"ev-{n}" for n in range(EVENTS)],
            "compute on B": [f"ev-{n}" for n in range(EVENTS) if n % 2 == 1],
        }

        async with contextlib.AsyncExitStack() as stack:
            streams = {
                name: await stack.enter_async_context(
                    open_stream(server.ws_url, **filters)
                )
                for name, (server, filters) in clients.items()
            }
            before_a = await wait_for_health(a, clients_are(2))
            before_b = await wait_for_health(b, clients_are(2))

            # The first and the last event from `osism events publish`, the
            # others from a listener's event bridge; one after the other.
            await publish_with_the_command(redis_server, a.channel, events[0])
            counters = await publish_as_the_listener(
                redis_server, a.channel, events[1:-1]
            )
            assert counters == {"published": EVENTS - 2}
            await publish_with_the_command(redis_server, a.channel, events[-1])

            received = {
                name: resource_ids(await receive_events(stream, last, name))
                for name, stream in streams.items()
            }
            after_a = await get_health(a)
            after_b = await get_health(b)

        for name in clients:
            assert received[name] == expected[name], name
        # Every frame of A's and B's: each got each event once and sent it to
        # exactly its matching clients.
        assert increase(before_a, after_a) == {
            "received": EVENTS,
            "broadcast": len(expected["everything on A"])
            + len(expected["node-1 on A"]),
            "dropped": 0,
            "invalid": 0,
            "duplicates": 0,
            "replayed": 0,
            "gaps": 0,
        }
        assert increase(before_b, after_b) == {
            "received": EVENTS,
            "broadcast": len(expected["everything on B"])
            + len(expected["compute on B"]),
            "dropped": 0,
            "invalid": 0,
            "duplicates": 0,
            "replayed": 0,
            "gaps": 0,
        }
        for health in (after_a, after_b):
            assert health["bridge"]["mode"] == "redis"
            assert health["bridge"]["subscriber_alive"] is True


class TestAnEventPostedToOneApiReachesTheClientsOfTheOther:
    @pytest.mark.anyio
    async def test_in_both_directions(self, two_apis):
        a, b = two_apis
        to_a = ironic("power_set.end", "node-posted", "posted-to-a")
        to_b = nova("update", "node-posted", "posted-to-b")
        async with contextlib.AsyncExitStack() as stack:
            on_a = await stack.enter_async_context(
                open_stream(a.ws_url, node_filters=["node-posted"])
            )
            on_b = await stack.enter_async_context(
                open_stream(b.ws_url, node_filters=["node-posted"])
            )
            before_a = await wait_for_health(a, clients_are(1))
            before_b = await wait_for_health(b, clients_are(1))

            await post_event(a, **to_a)
            await post_event(b, **to_b)
            # Each client has both, in the order they were posted, and
            # nothing in between.
            frames_a = await receive_events(on_a, "posted-to-b", "the client of A")
            frames_b = await receive_events(on_b, "posted-to-b", "the client of B")
            after_a = await get_health(a)
            after_b = await get_health(b)

        expected = [
            ("baremetal.node.power_set.end", "node-posted", "posted-to-a"),
            ("compute.instance.update", "node-posted", "posted-to-b"),
        ]
        assert [summary(f) for f in frames_a] == expected
        assert [summary(f) for f in frames_b] == expected
        for before, after in ((before_a, after_a), (before_b, after_b)):
            assert increase(before, after) == {
                "received": 2,
                "broadcast": 2,
                "dropped": 0,
                "invalid": 0,
                "duplicates": 0,
                "replayed": 0,
                "gaps": 0,
            }
