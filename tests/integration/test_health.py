"""GET /v1/events/health in Redis mode and in embedded mode."""

import contextlib
import uuid

import pytest

from tests.harness.api_server import http_request
from tests.harness.clients import get_health, open_stream, post_event, wait_for_health
from tests.harness.notifications import ironic

pytestmark = pytest.mark.integration

WEBSOCKET_COUNTERS = {
    "received",
    "broadcast",
    "dropped",
    "invalid",
    "duplicates",
    "replayed",
    "gaps",
}


def fresh_node():
    return f"node-{uuid.uuid4().hex[:8]}"


def clients_are(count):
    return lambda health: health["websocket"]["clients"] == count


async def assert_clients_follow_connections(server):
    await wait_for_health(server, clients_are(0))
    async with contextlib.AsyncExitStack() as outer:
        await outer.enter_async_context(open_stream(server.ws_url))
        await wait_for_health(server, clients_are(1))
        async with open_stream(server.ws_url, node_filters=["node1"]):
            await wait_for_health(server, clients_are(2))
        await wait_for_health(server, clients_are(1))
    await wait_for_health(server, clients_are(0))


async def deliver_one_event(server):
    """One POSTed event, one client it matches and one it does not; the
    health before and after the event has gone through the broadcaster."""
    node = fresh_node()
    await wait_for_health(server, clients_are(0))
    before = await get_health(server)
    async with contextlib.AsyncExitStack() as stack:
        matching = await stack.enter_async_context(
            open_stream(server.ws_url, node_filters=[node])
        )
        await stack.enter_async_context(
            open_stream(server.ws_url, node_filters=[fresh_node()])
        )
        await post_event(server, **ironic("power_set.end", node))
        frame = await matching.receive()
        assert frame["node_name"] == node
        received = before["websocket"]["counters"]["received"] + 1
        after = await wait_for_health(
            server, lambda h: h["websocket"]["counters"]["received"] == received
        )
    return before, after


@pytest.mark.redis
class TestAFreshServerInRedisModeReportsItsRedisBridge:
    def test_exact_health(self, api_server):
        server = api_server("redis")
        assert server.health() == {
            "status": "ok",
            "bridge": {
                "mode": "redis",
                "redis_connected": True,
                "subscriber_alive": True,
                "channel": server.channel,
                "local_queue": 0,
                "buffered": 0,
                "outage": None,
                "counters": {},
            },
            "websocket": {
                "clients": 0,
                "queue": 0,
                "broadcaster_running": True,
                "history": 0,
                "counters": dict.fromkeys(WEBSOCKET_COUNTERS, 0),
            },
        }


@pytest.mark.redis
class TestHealthInRedisMode:
    def test_reports_redis_mode(self, redis_mode_server):
        health = redis_mode_server.health()
        assert health["status"] == "ok"
        bridge = health["bridge"]
        assert bridge["mode"] == "redis"
        assert bridge["redis_connected"] is True
        assert bridge["subscriber_alive"] is True
        assert bridge["channel"] == redis_mode_server.channel
        assert health["websocket"]["broadcaster_running"] is True
        assert set(health["websocket"]["counters"]) == WEBSOCKET_COUNTERS

    @pytest.mark.anyio
    async def test_clients_count_follows_connects_and_disconnects(
        self, redis_mode_server
    ):
        await assert_clients_follow_connections(redis_mode_server)

    @pytest.mark.anyio
    async def test_counters_count_a_published_and_broadcast_event(
        self, redis_mode_server
    ):
        before, after = await deliver_one_event(redis_mode_server)
        old, new = before["websocket"]["counters"], after["websocket"]["counters"]
        assert new == {
            **old,
            "received": old["received"] + 1,
            "broadcast": old["broadcast"] + 1,
        }
        old, new = before["bridge"]["counters"], after["bridge"]["counters"]
        assert new == {**old, "published": old.get("published", 0) + 1}
        assert after["bridge"]["local_queue"] == 0


class TestHealthInEmbeddedMode:
    def test_reports_embedded_mode_and_the_redis_outage(self, embedded_mode_server):
        health = embedded_mode_server.health()
        assert health["status"] == "degraded"
        bridge = health["bridge"]
        assert bridge["outage"]["error"].startswith("Error 111 connecting to")
        assert bridge["outage"]["since"].endswith("Z")
        assert bridge["mode"] == "embedded"
        assert bridge["redis_connected"] is False
        assert bridge["subscriber_alive"] is False
        assert bridge["channel"] == embedded_mode_server.channel
        assert health["websocket"]["broadcaster_running"] is True
        assert set(health["websocket"]["counters"]) == WEBSOCKET_COUNTERS

    @pytest.mark.anyio
    async def test_clients_count_follows_connects_and_disconnects(
        self, embedded_mode_server
    ):
        await assert_clients_follow_connections(embedded_mode_server)

    @pytest.mark.anyio
    async def test_counters_count_a_locally_queued_and_broadcast_event(
        self, embedded_mode_server
    ):
        before, after = await deliver_one_event(embedded_mode_server)
        old, new = before["websocket"]["counters"], after["websocket"]["counters"]
        assert new == {
            **old,
            "received": old["received"] + 1,
            "broadcast": old["broadcast"] + 1,
        }
        old, new = before["bridge"]["counters"], after["bridge"]["counters"]
        for name in ("queued_locally", "kept_for_redis"):
            assert new[name] == old.get(name, 0) + 1
        assert "published" not in new
        assert after["bridge"]["local_queue"] == 0
        # Kept for the other API processes, published once Redis is back.
        assert after["bridge"]["buffered"] == before["bridge"]["buffered"] + 1


class TestHealthWithRedisDisabled:
    def test_an_empty_redis_host_is_embedded_by_choice_not_an_outage(self, api_server):
        server = api_server("embedded", env={"REDIS_HOST": ""})
        health = server.health()
        assert health["status"] == "ok"
        assert health["bridge"]["mode"] == "embedded"
        assert health["bridge"]["outage"] is None
        assert "Redis is disabled (REDIS_HOST is empty)" in server.output()
        assert "Failed to connect to Redis" not in server.output()


class TestLivenessAndInfoEndpoints:
    @pytest.mark.parametrize("path", ["/", "/v1"])
    def test_liveness(self, embedded_mode_server, path):
        assert http_request("GET", embedded_mode_server.base_url + path) == (
            200,
            {"status": "ok", "service": "osism events"},
        )

    def test_events_info_names_the_websocket_and_the_ingest_endpoint(
        self, embedded_mode_server
    ):
        status, info = http_request("GET", embedded_mode_server.base_url + "/v1/events")
        assert status == 200
        assert info["websocket"] == "/v1/events/openstack"
        assert info["ingest"] == "POST /v1/events with event_type and payload"
        assert info["filters"]["send"]["action"] == "set_filters"
        assert info["filters"]["reply"] == {
            "type": "filter_update",
            "status": "success",
        }
