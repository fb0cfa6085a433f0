"""The API started the ways it is started: README's run command
(``scripts/serve``), ``osism service api``, and ``uvicorn osism.api:app`` as
OSISM's containers start it; on a machine without Redis and with one."""

import uuid

import anyio
import pytest

from tests.harness.clients import open_stream, post_event
from tests.harness.notifications import ironic
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.integration

LAUNCHES = [
    # README's run command; it sets up .venv first (at once when nothing
    # changed since scripts/test did), see the readme marker.
    pytest.param("serve", marks=pytest.mark.readme),
    "cli",
    "uvicorn",
]


def error_lines(output: str):
    return [
        line
        for line in output.splitlines()
        if " ERROR " in line or "Traceback" in line or line.startswith("ERROR")
    ]


@pytest.mark.parametrize("launch", LAUNCHES)
class TestAFirstStartWithoutRedis:
    """No REDIS_HOST and nothing at the default host: embedded by default."""

    def test_health_is_ok_and_no_error_is_logged(self, api_server, launch):
        server = api_server("default", launch=launch)

        health = server.health()

        assert health["status"] == "ok"
        assert (health["bridge"]["mode"], health["bridge"]["outage"]) == (
            "embedded",
            None,
        )
        output = server.output()
        assert "osism.event_bridge: No Redis at redis:6379" in output
        assert error_lines(output) == []

    @pytest.mark.anyio
    async def test_a_posted_event_reaches_a_client(self, api_server, launch):
        server = api_server("default", launch=launch)
        node = f"node-{uuid.uuid4().hex[:8]}"

        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            await post_event(server, **ironic("power_set.end", node))
            frame = await stream.receive()

        assert (frame["event_type"], frame["node_name"]) == (
            "baremetal.node.power_set.end",
            node,
        )
        assert error_lines(server.output()) == []


@pytest.mark.redis
class TestUvicornOsismApiAppWithRedis:
    @pytest.mark.anyio
    async def test_it_streams_what_is_published_on_redis(self, api_server):
        server = api_server("redis", launch="uvicorn")
        other = api_server("redis", channel=server.channel)
        node = f"node-{uuid.uuid4().hex[:8]}"

        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            # Posted to the other API process: it reaches this one over Redis.
            await post_event(other, **ironic("power_set.end", node))
            frame = await stream.receive()

        assert frame["node_name"] == node
        assert server.health()["bridge"]["mode"] == "redis"
        assert error_lines(server.output()) == []


@pytest.mark.redis
class TestGunicornWithUvicornWorkers:
    @pytest.mark.anyio
    async def test_every_event_reaches_a_client_whichever_worker_took_it(
        self, api_server, redis_server
    ):
        server = api_server("redis", launch="gunicorn")
        # Both workers listen before anything is posted.
        await anyio.to_thread.run_sync(
            lambda: wait_for(
                lambda: redis_server.subscribers(server.channel) == 2,
                what="both workers subscribing",
            )
        )
        node = f"node-{uuid.uuid4().hex[:8]}"
        posted = [f"uuid-{number}" for number in range(20)]

        async with open_stream(server.ws_url, node_filters=[node]) as stream:
            for resource in posted:
                await post_event(server, **ironic("power_set.end", node, resource))
            frames = [await stream.receive() for _ in posted]

        assert [frame["data"]["resource_id"] for frame in frames] == posted
        assert error_lines(server.output()) == []
