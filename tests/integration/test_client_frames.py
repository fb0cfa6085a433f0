"""Frames a real WebSocket client sends: bad ones get an error frame and the
connection stays open with its filters unchanged; filters match whole values."""

import json
import uuid
from typing import List

import pytest

from tests.harness.clients import open_stream, post_event
from tests.harness.notifications import ironic, nova, summary

pytestmark = [pytest.mark.integration, pytest.mark.redis]

MAX_FRAME_BYTES = 1024

NODE1_FILTERS = {
    "type": "filter_update",
    "status": "success",
    "event_filters": [],
    "node_filters": ["node1"],
    "service_filters": [],
}


@pytest.fixture(scope="module")
def server(module_api_server):
    """One server for the module, in Redis mode, with a small frame limit."""
    return module_api_server(
        "redis", env={"WEBSOCKET_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES)}
    )


def set_filters_of_size(size):
    """A valid set_filters frame of exactly ``size`` bytes: node names of at
    most 200 characters (a value may hold 255) filling it up."""
    names: List[str] = []
    while True:
        frame = json.dumps({"action": "set_filters", "node_filters": names + [""]})
        room = size - len(frame)
        if room <= 200:
            names.append("n" * room)
            break
        names.append("n" * 200)
    frame = json.dumps({"action": "set_filters", "node_filters": names})
    assert len(frame.encode()) == size
    return frame


BAD_TEXT_FRAMES = {
    "not JSON": (
        "node1 please",
        "frame is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    "truncated JSON": (
        '{"action": "set_filters"',
        "frame is not valid JSON: Expecting ',' delimiter: line 1 column 25 "
        "(char 24)",
    ),
    "a JSON list": (
        '["set_filters"]',
        "frame must be a JSON object, not list",
    ),
    "a JSON string": (
        '"set_filters"',
        "frame must be a JSON object, not str",
    ),
    "an unknown action": (
        '{"action": "subscribe", "node_filters": ["node2"]}',
        "unknown action 'subscribe'; supported: 'set_filters', 'resume'",
    ),
    "no action": (
        '{"node_filters": ["node2"]}',
        "unknown action None; supported: 'set_filters', 'resume'",
    ),
    "a filter list holding a number": (
        '{"action": "set_filters", "node_filters": ["node2", 2]}',
        "'node_filters' must be a list of strings",
    ),
    "a filter given as an object": (
        '{"action": "set_filters", "event_filters": {"type": "x"}}',
        "'event_filters' must be a list of strings",
    ),
    # A valid list next to the bad one must not be applied either: with
    # service_filters ["compute"] the node1 baremetal event would be missed.
    "a filter given as a string": (
        '{"action": "set_filters", "service_filters": ["compute"], '
        '"node_filters": "node2"}',
        "'node_filters' must be a list of strings",
    ),
    "an unknown key": (
        '{"action": "set_filters", "node_filter": ["node2"]}',
        "unknown key(s) node_filter; set_filters takes event_filters, "
        "node_filters, service_filters",
    ),
    "a frame over the size limit": (
        set_filters_of_size(MAX_FRAME_BYTES + 1),
        f"frame of {MAX_FRAME_BYTES + 1} bytes is larger than "
        f"{MAX_FRAME_BYTES} bytes",
    ),
}


async def assert_still_streams_node1_only(server, stream):
    """Publish events for node10 and node2, then node1: the next frame the
    client gets is the node1 one, so the connection is open and its filter
    is still exactly node_filters ["node1"]."""
    tag = uuid.uuid4().hex
    await post_event(server, **ironic("power_set.end", "node10", f"{tag}-10"))
    await post_event(server, **ironic("power_set.end", "node2", f"{tag}-2"))
    await post_event(server, **ironic("power_set.end", "node1", f"{tag}-1"))
    frame = await stream.receive()
    assert summary(frame) == ("baremetal.node.power_set.end", "node1", f"{tag}-1")


class TestABadTextFrameGetsAnErrorFrameAndTheConnectionStaysOpen:
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "frame, message", BAD_TEXT_FRAMES.values(), ids=BAD_TEXT_FRAMES.keys()
    )
    async def test_error_frame_then_events_with_the_old_filters(
        self, server, frame, message
    ):
        async with open_stream(server.ws_url) as stream:
            assert await stream.set_filters(node_filters=["node1"]) == NODE1_FILTERS
            await stream.websocket.send(frame)
            assert await stream.receive() == {"type": "error", "message": message}
            await assert_still_streams_node1_only(server, stream)


class TestABinaryFrameGetsAnErrorFrameAndTheConnectionStaysOpen:
    @pytest.mark.anyio
    async def test_binary_frame(self, server):
        async with open_stream(server.ws_url) as stream:
            assert await stream.set_filters(node_filters=["node1"]) == NODE1_FILTERS
            await stream.websocket.send(b'{"action": "set_filters"}')
            assert await stream.receive() == {
                "type": "error",
                "message": "binary frames are not supported; send JSON text",
            }
            await assert_still_streams_node1_only(server, stream)


class TestAFrameOfExactlyTheSizeLimitIsAccepted:
    @pytest.mark.anyio
    async def test_frame_at_the_limit(self, server):
        frame = set_filters_of_size(MAX_FRAME_BYTES)
        async with open_stream(server.ws_url) as stream:
            await stream.websocket.send(frame)
            reply = await stream.receive()
            assert reply == {
                "type": "filter_update",
                "status": "success",
                "event_filters": [],
                "node_filters": json.loads(frame)["node_filters"],
                "service_filters": [],
            }
            # The connection keeps working with the next frame.
            assert await stream.set_filters(node_filters=["node1"]) == NODE1_FILTERS
            await assert_still_streams_node1_only(server, stream)


class TestSeveralErrorsInARowLeaveTheConnectionUsable:
    @pytest.mark.anyio
    async def test_all_bad_frames_on_one_connection(self, server):
        async with open_stream(server.ws_url) as stream:
            assert await stream.set_filters(node_filters=["node1"]) == NODE1_FILTERS
            for frame, message in BAD_TEXT_FRAMES.values():
                await stream.websocket.send(frame)
            for frame, message in BAD_TEXT_FRAMES.values():
                assert await stream.receive() == {"type": "error", "message": message}
            await assert_still_streams_node1_only(server, stream)


class TestFiltersMatchWholeValuesNeverSubstrings:
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "filters, near_misses, match",
        [
            pytest.param(
                {"node_filters": ["node1"]},
                [
                    ironic("power_set.end", "node10"),
                    ironic("power_set.end", "xnode1"),
                    ironic("power_set.end", "node"),
                    ironic("power_set.end", "NODE1"),
                ],
                ironic("power_set.end", "node1"),
                id="node",
            ),
            pytest.param(
                {"service_filters": ["bare"]},
                [
                    ironic("power_set.end", "node1"),
                    {"event_type": "baremetalx.node.create", "payload": {}},
                ],
                {"event_type": "bare.thing.happened", "payload": {}},
                id="service",
            ),
            pytest.param(
                {"event_filters": ["compute.instance"]},
                [nova("update", "node1"), nova("create.end", "node1")],
                {"event_type": "compute.instance", "payload": {}},
                id="event",
            ),
        ],
    )
    async def test_only_the_exact_value_matches(
        self, server, filters, near_misses, match
    ):
        async with open_stream(server.ws_url, **filters) as stream:
            for event in near_misses:
                await post_event(server, **event)
            await post_event(server, **match)
            frame = await stream.receive()
            assert frame["event_type"] == match["event_type"]
            assert frame["data"]["resource_id"] == (
                match["payload"].get("ironic_object.data", {}).get("uuid")
            )
