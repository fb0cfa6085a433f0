"""The stream keeps going when Redis restarts under a running API server."""

import anyio
import pytest

from tests.harness.clients import get_health, open_stream, post_event, wait_for_health
from tests.harness.notifications import ironic, summary
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]


class TestTheStreamSurvivesARedisRestart:
    @pytest.mark.timeout(30)
    @pytest.mark.anyio
    async def test_events_flow_again_after_redis_restarts(
        self, own_redis_server, api_server
    ):
        # own_redis_server comes first so that it is stopped after the API.
        redis = own_redis_server
        server = api_server("redis", redis_server=redis)
        async with open_stream(server.ws_url, node_filters=["node1"]) as stream:
            await post_event(server, **ironic("power_set.end", "node1", "before"))
            assert summary(await stream.receive())[2] == "before"

            await anyio.to_thread.run_sync(redis.stop)
            await anyio.to_thread.run_sync(redis.start)
            # The API's subscriber is back on the channel of the new Redis.
            await wait_until(lambda: redis.subscribers(server.channel) == 1, 20)

            await post_event(server, **ironic("power_set.end", "node1", "after"))
            frame = await stream.receive()
        assert summary(frame) == ("baremetal.node.power_set.end", "node1", "after")
        bridge = (await get_health(server))["bridge"]
        assert bridge["mode"] == "redis"
        assert bridge["subscriber_alive"] is True

    @pytest.mark.timeout(40)
    @pytest.mark.anyio
    async def test_events_flow_again_after_a_longer_outage(
        self, own_redis_server, api_server
    ):
        """Down long enough for the subscriber to see the error and retry."""
        redis = own_redis_server
        server = api_server("redis", redis_server=redis)
        async with open_stream(server.ws_url, node_filters=["node1"]) as stream:
            await anyio.to_thread.run_sync(redis.stop)
            await wait_for_health(
                server,
                lambda h: h["bridge"]["counters"].get("redis_errors", 0) >= 1,
                timeout=15,
            )
            await anyio.to_thread.run_sync(redis.start)
            await wait_until(lambda: redis.subscribers(server.channel) == 1, 20)

            await post_event(server, **ironic("power_set.end", "node1", "after"))
            frame = await stream.receive()
        assert summary(frame) == ("baremetal.node.power_set.end", "node1", "after")
        bridge = (await get_health(server))["bridge"]
        assert bridge["mode"] == "redis"
        assert bridge["subscriber_alive"] is True
