"""Filtered streams: events published by another process over Redis reach
exactly the WebSocket clients whose filters match, in order."""

import contextlib
import json
import subprocess
import sys

import anyio
import pytest

from tests.harness.clients import get_health, open_stream, post_event, wait_for_health
from tests.harness.notifications import expected_data, ironic, nova, summary
from tests.harness.ports import LOOPBACK, closed_port
from tests.harness.processes import REPO_ROOT, clean_env

pytestmark = pytest.mark.integration

# Publishes the events given as a JSON list on stdin through an EventBridge,
# as the listener process does, and prints the bridge's counters.
PUBLISHER = """
import json, sys
from osism.services.event_bridge import EventBridge

bridge = EventBridge()
try:
    assert bridge.health()["redis_connected"], "Redis is not reachable"
    for event in json.load(sys.stdin):
        bridge.add_event(event["event_type"], event["payload"])
finally:
    bridge.shutdown()
print(json.dumps(dict(bridge.stats)))
"""


async def publish_from_another_process(redis_server, channel, events):
    """Run PUBLISHER as a child process; its counters."""
    env = clean_env(
        REDIS_HOST=LOOPBACK, REDIS_PORT=str(redis_server.port), REDIS_CHANNEL=channel
    )
    with anyio.fail_after(8):
        result = await anyio.run_process(
            [sys.executable, "-c", PUBLISHER],
            input=json.dumps(events).encode(),
            env=env,
            cwd=REPO_ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def image(name, image_id):
    payload = {"glance_object.data": {"name": name, "id": image_id}}
    return {"event_type": "image.image.update", "payload": payload}


def port(name, port_id):
    payload = {"neutron_object.data": {"name": name, "id": port_id}}
    return {"event_type": "network.port.create.end", "payload": payload}


@pytest.mark.redis
class TestThreeClientsWithDifferentFiltersEachReceiveExactlyTheirEvents:
    @pytest.mark.anyio
    async def test_service_node_and_event_filters(self, api_server, redis_server):
        server = api_server("redis")
        e1 = ironic("power_set.end", "node1", "bm-1")  # baremetal, node1
        e2 = nova("update", "node1", "vm-1")  # compute.instance.update, node1
        e3 = ironic("provision_set.end", "node10", "bm-10")  # baremetal, node10
        e4 = port("port-1", "p-1")  # nobody
        e5 = nova("update", "node2", "vm-2")  # compute.instance.update, node2
        e6 = nova("delete.end", "node1", "vm-1")  # compute, node1
        # One last event per client, matching that client only: everything
        # published before it has been fanned out when it arrives, so a client
        # that got anything else would have it before this one.
        last_a = ironic("maintenance_set.end", "last-a", "bm-last")
        last_b = image("node1", "img-last")
        last_c = nova("update", "last-c", "vm-last")
        events = [e1, e2, e3, e4, e5, e6, last_a, last_b, last_c]

        async with contextlib.AsyncExitStack() as stack:
            by_service = await stack.enter_async_context(
                open_stream(server.ws_url, service_filters=["baremetal"])
            )
            by_node = await stack.enter_async_context(
                open_stream(server.ws_url, node_filters=["node1"])
            )
            by_event = await stack.enter_async_context(
                open_stream(server.ws_url, event_filters=["compute.instance.update"])
            )
            await wait_for_health(server, lambda h: h["websocket"]["clients"] == 3)

            counters = await publish_from_another_process(
                redis_server, server.channel, events
            )
            assert counters == {"published": len(events)}

            received_a = await by_service.receive_until(
                lambda f: f["node_name"] == "last-a"
            )
            received_b = await by_node.receive_until(
                lambda f: f["event_type"] == "image.image.update"
            )
            received_c = await by_event.receive_until(
                lambda f: f["node_name"] == "last-c"
            )

        assert [summary(f) for f in received_a] == [
            ("baremetal.node.power_set.end", "node1", "bm-1"),
            ("baremetal.node.provision_set.end", "node10", "bm-10"),
            ("baremetal.node.maintenance_set.end", "last-a", "bm-last"),
        ]
        assert [summary(f) for f in received_b] == [
            ("baremetal.node.power_set.end", "node1", "bm-1"),
            ("compute.instance.update", "node1", "vm-1"),
            ("compute.instance.delete.end", "node1", "vm-1"),
            ("image.image.update", "node1", "img-last"),
        ]
        assert [summary(f) for f in received_c] == [
            ("compute.instance.update", "node1", "vm-1"),
            ("compute.instance.update", "node2", "vm-2"),
            ("compute.instance.update", "last-c", "vm-last"),
        ]
        # The same notification reaches two clients as the same event.
        assert received_a[0] == received_b[0]
        assert received_b[1] == received_c[0]
        assert received_a[0]["source"] == "openstack"
        assert received_a[0]["data"] == expected_data(
            e1["payload"], "baremetal", "bm-1"
        )
        assert received_c[1]["data"] == expected_data(e5["payload"], "compute", "vm-2")

        # Every event went through the broadcaster; 10 frames in all.
        health = await get_health(server)
        assert health["websocket"]["counters"] == {
            "received": 9,
            "broadcast": 10,
            "dropped": 0,
            "invalid": 0,
            "duplicates": 0,
            "replayed": 0,
            "gaps": 0,
        }


@pytest.mark.redis
class TestTheEventsPublishCommandReachesAClient:
    @pytest.mark.anyio
    async def test_osism_events_publish(self, api_server, redis_server):
        server = api_server("redis")
        payload = {"ironic_object.data": {"name": "node3", "uuid": "bm-3"}}
        async with open_stream(server.ws_url, node_filters=["node3"]) as stream:
            env = clean_env(
                REDIS_HOST=LOOPBACK,
                REDIS_PORT=str(redis_server.port),
                REDIS_CHANNEL=server.channel,
            )
            command = [sys.executable, "-m", "osism", "events", "publish"]
            command += [
                "baremetal.node.power_set.end",
                "--payload",
                json.dumps(payload),
            ]
            with anyio.fail_after(8):
                result = await anyio.run_process(
                    command, env=env, cwd=REPO_ROOT, check=False
                )
            assert result.returncode == 0, result.stderr.decode()
            said = result.stdout.decode()
            assert said.startswith(
                "Published baremetal.node.power_set.end on Redis channel "
                f"{server.channel} (id "
            )
            frame = await stream.receive()
        # The id it was given where it entered the stream.
        assert said == said.split(" (id ")[0] + f" (id {frame['id']})\n"
        assert summary(frame) == ("baremetal.node.power_set.end", "node3", "bm-3")
        assert frame["data"] == expected_data(payload, "baremetal", "bm-3")


class TestTheEventsPublishCommandWithoutRedis:
    def test_fails_with_a_clear_message(self):
        with closed_port() as closed:
            env = clean_env(REDIS_HOST=LOOPBACK, REDIS_PORT=str(closed))
            result = subprocess.run(
                [sys.executable, "-m", "osism", "events", "publish", "x.y", "--payload"]
                + ["{}", "--timeout", "1"],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=8,
            )
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.endswith(
            f"Error: Redis at {LOOPBACK}:{closed} did not take the event within "
            "1 s, so it was not published. Start Redis (set REDIS_HOST/REDIS_PORT), "
            "or post the event to an API (--url).\n"
        )


@pytest.mark.redis
class TestHeartbeatsReachClientsWithoutFiltersOnly:
    @pytest.mark.anyio
    async def test_heartbeat_frames(self, api_server):
        server = api_server("redis", heartbeat_interval=0.2)
        async with contextlib.AsyncExitStack() as stack:
            unfiltered = await stack.enter_async_context(open_stream(server.ws_url))
            by_node = await stack.enter_async_context(
                open_stream(server.ws_url, node_filters=["node1"])
            )
            first = await unfiltered.receive()
            second = await unfiltered.receive()
            await post_event(server, **ironic("power_set.end", "node1", "bm-hb"))
            # The filtered client got no heartbeat before its event.
            frame = await by_node.receive()
        for heartbeat in (first, second):
            assert {
                k: v for k, v in heartbeat.items() if k not in ("id", "timestamp")
            } == {
                "event_type": "heartbeat",
                "source": "osism",
                "node_name": None,
                "data": {"message": "ping"},
            }
        assert first["id"] != second["id"]
        assert summary(frame) == ("baremetal.node.power_set.end", "node1", "bm-hb")
