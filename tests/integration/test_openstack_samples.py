"""OpenStack's own documented notifications, end to end: every row of
tests/samples/openstack.py (every nova sample, every ironic example, the
legacy forms of nova, neutron, cinder, glance and keystone) posted to a real
``uvicorn osism.api:app`` on Redis; clients filtering by project name, by
service type and by node each get exactly the events meant for them, with
the service, node and resource the rows expect, in order."""

from typing import Any, Dict, List, Tuple

import anyio
import pytest

from tests.harness.clients import get_health, open_stream, wait_for_health
from tests.samples.openstack import SAMPLES, Sample, received_by

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# Each client's filters, and the rows it gets (predicted by received_by(),
# which knows the filter semantics without asking the code under test).
CLIENTS: Dict[str, Tuple[Dict[str, List[str]], List[Sample]]] = {
    "project nova": ({"service_filters": ["nova"]}, received_by(service="nova")),
    "project ironic": (
        {"service_filters": ["ironic"]},
        received_by(service="ironic"),
    ),
    "type network": (
        {"service_filters": ["network"]},
        received_by(service="network"),
    ),
    "type volume": ({"service_filters": ["volume"]}, received_by(service="volume")),
    "project keystone": (
        {"service_filters": ["keystone"]},
        received_by(service="keystone"),
    ),
    "type image": ({"service_filters": ["image"]}, received_by(service="image")),
    "compute host": ({"node_filters": ["compute"]}, received_by(node="compute")),
    "ironic node": ({"node_filters": ["node-1"]}, received_by(node="node-1")),
}


def seen(frame: Dict[str, Any]) -> Tuple[Any, ...]:
    data = frame["data"]
    return (
        frame["event_type"],
        data.get("publisher_id"),
        data["service_type"],
        frame["node_name"],
        data["resource_id"],
    )


def expected(sample: Sample) -> Tuple[Any, ...]:
    return (
        sample.event_type,
        sample.publisher_id,
        sample.service_type,
        sample.node_name,
        sample.resource_id,
    )


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_each_client_gets_exactly_its_events_with_service_node_and_resource(
    api_server,
):
    server = api_server("redis", launch="uvicorn")
    predicted = {name: rows for name, (_, rows) in CLIENTS.items()}
    assert all(predicted.values()), "every client is meant to receive something"
    before = (await get_health(server))["websocket"]["counters"]

    async with anyio.create_task_group() as streams:
        clients = {}
        for name, (filters, _) in CLIENTS.items():
            clients[name] = await streams.start(_listen, server.ws_url, filters)
        for sample in SAMPLES:
            status, body = await anyio.to_thread.run_sync(
                lambda: server.post_event(**sample.notification)
            )
            assert status == 202, (sample.id, body)
        # One deadline for all: a client short of its events shows in the
        # comparison below with what it did get.
        results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in clients}
        with anyio.move_on_after(15):
            for name, receive in clients.items():
                await receive(len(predicted[name]), results[name])
        streams.cancel_scope.cancel()

    for name, frames in results.items():
        assert [seen(frame) for frame in frames] == [
            expected(sample) for sample in predicted[name]
        ], name
    # Nothing beyond what was predicted went to any client: the broadcaster
    # fanned out every sample, and handed over exactly that many frames.
    await wait_for_health(
        server,
        lambda health: health["websocket"]["counters"]
        == {
            **before,
            "received": before["received"] + len(SAMPLES),
            "broadcast": before["broadcast"]
            + sum(len(rows) for rows in predicted.values()),
        },
    )


async def _listen(url, filters, task_status=anyio.TASK_STATUS_IGNORED):
    """Keep a client connected with ``filters``; hand back a coroutine
    function that appends its next frames to a list until it holds
    ``count``."""
    async with open_stream(url, **filters) as stream:

        async def receive(count: int, frames: List[Dict[str, Any]]) -> None:
            while len(frames) < count:
                frames.append(await stream.receive(timeout=15))

        task_status.started(receive)
        await anyio.sleep_forever()
