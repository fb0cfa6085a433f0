"""Issue 15, "Safe to expose", against real servers: bounded input. A body
over MAX_EVENT_BYTES is 413 without being read; a body that is not a
notification is 422 naming the problem, never 500; a flood of large posts
leaves memory where it was; client frames are bounded (filter values, frame
rate, clients); schemathesis finds no 5xx on a real uvicorn. Every refusal
is followed by the service still streaming to its other clients.
(Tokens, origins and logs are in test_security.py.)"""

import contextlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from websockets.exceptions import ConnectionClosed

from tests.harness.api_server import ApiServer
from tests.harness.clients import (
    EventStream,
    get_health,
    open_stream,
    post_event,
    wait_for_health,
)
from tests.harness.fixtures import MEASUREMENTS
from tests.harness.notifications import ironic
from tests.harness.proc_stats import sample
from tests.harness.raw_clients import (
    post_chunked,
    post_declaring,
    post_json,
)
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis]

MAX_EVENT_BYTES = 1_000_000  # the default
MAX_JSON_DEPTH = 32  # the default
MAX_FILTER_VALUES = 5
# Slow enough that the budget does not refill while a burst is answered.
FRAMES_PER_SECOND = 2


def fresh_node() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def bounded(module_api_server) -> ApiServer:
    """osism service api in Redis mode, the default body bounds, small
    client bounds."""
    return module_api_server(
        "redis",
        env={
            "WEBSOCKET_MAX_FILTER_VALUES": str(MAX_FILTER_VALUES),
            "WEBSOCKET_MAX_FRAMES_PER_SECOND": str(FRAMES_PER_SECOND),
        },
    )


async def still_streams(server: ApiServer) -> None:
    """Another client gets an event posted now."""
    node = fresh_node()
    async with open_stream(server.ws_url, node_filters=[node]) as stream:
        await post_event(server, **ironic("power_set.end", node))
        frame = await stream.receive()
    assert frame["node_name"] == node


def body_of_size(size: int, node: str) -> bytes:
    """A valid notification about ``node`` of exactly ``size`` bytes."""
    notification = ironic("power_set.end", node)
    notification["payload"]["blob"] = ""
    room = size - len(json.dumps(notification).encode())
    assert room >= 0
    notification["payload"]["blob"] = "x" * room
    body = json.dumps(notification).encode()
    assert len(body) == size
    return body


# --------------------------------------------------------------------------
# 413


@pytest.mark.anyio
async def test_a_body_declared_over_the_bound_is_413_before_it_is_sent(bounded):
    # Twice the bound declared, one byte sent: the answer cannot wait for the rest.
    answer = await anyio.to_thread.run_sync(
        lambda: post_declaring(bounded, 2 * MAX_EVENT_BYTES, b"{")
    )
    # A length no server need parse: refused by uvicorn's HTTP parser.
    huge = await anyio.to_thread.run_sync(lambda: post_declaring(bounded, 10**30, b"{"))

    assert (answer.status, answer.json()) == (
        413,
        {"detail": "the body is 2000000 bytes; at most 1000000 are taken"},
    )
    assert (huge.status, huge.body) == (400, b"Invalid HTTP request received.")
    await still_streams(bounded)


@pytest.mark.anyio
async def test_a_chunked_body_is_413_as_soon_as_it_passes_the_bound(bounded):
    # 17 chunks of 64 KiB, more than the bound, and no final chunk: the
    # answer comes while the body has not ended.
    chunks = [b" " * 65536] * 17
    answer = await anyio.to_thread.run_sync(lambda: post_chunked(bounded, chunks))

    assert (answer.status, answer.json()) == (
        413,
        {"detail": "the body is over 1000000 bytes"},
    )
    await still_streams(bounded)


# --------------------------------------------------------------------------
# 422


def nested(depth: int) -> Any:
    """A payload whose deepest container is ``depth`` levels down in the
    body (the body is level 1, the payload level 2)."""
    value: Any = []
    for _ in range(depth - 3):
        value = [value]
    return {"a": value}


def notification(event_type: Any = "baremetal.node.power_set.end", **fields: Any):
    body = {"event_type": event_type, "payload": {"ironic_object.data": {}}}
    body.update(fields)
    return json.dumps(body).encode()


# id: (body, loc, type, message)
BAD_BODIES = {
    "NaN": (
        b'{"event_type": "a.b", "payload": {"v": NaN}}',
        ["body"],
        "json_invalid",
        "the body is not JSON: NaN is not JSON",
    ),
    "Infinity": (
        b'{"event_type": "a.b", "payload": {"v": Infinity}}',
        ["body"],
        "json_invalid",
        "the body is not JSON: Infinity is not JSON",
    ),
    "-Infinity": (
        b'{"event_type": "a.b", "payload": {"v": -Infinity}}',
        ["body"],
        "json_invalid",
        "the body is not JSON: -Infinity is not JSON",
    ),
    "a lone surrogate": (
        b'{"event_type": "a.b", "payload": {"v": "\\ud800"}}',
        ["body"],
        "unicode",
        "a string holds a lone surrogate (not valid Unicode)",
    ),
    "a lone surrogate in a key": (
        b'{"event_type": "a.b", "payload": {"\\udfff": 1}}',
        ["body"],
        "unicode",
        "a string holds a lone surrogate (not valid Unicode)",
    ),
    "nesting one deeper than MAX_JSON_DEPTH": (
        notification(payload=nested(MAX_JSON_DEPTH + 1)),
        ["body"],
        "depth",
        "nested deeper than 32 levels",
    ),
    "100,000 open brackets": (
        b"[" * 100_000 + b"]" * 100_000,
        ["body"],
        "depth",
        "nested deeper than 32 levels",
    ),
    "not JSON": (
        b"baremetal.node.power_set.end",
        ["body"],
        "json_invalid",
        "the body is not JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    "empty": (
        b"",
        ["body"],
        "json_invalid",
        "the body is not JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    "not UTF-8": (b"\xff\xfe{}", ["body"], "json_invalid", "the body is not UTF-8"),
    "a JSON list": (
        b"[]",
        ["body"],
        "model_type",
        "Input should be a valid dictionary or instance of Notification",
    ),
    "no payload": (
        b'{"event_type": "a.b"}',
        ["body", "payload"],
        "missing",
        "Field required",
    ),
    "a payload that is a list": (
        b'{"event_type": "a.b", "payload": [1]}',
        ["body", "payload"],
        "dict_type",
        "Input should be a valid dictionary",
    ),
    "an event_type that is a number": (
        notification(7),
        ["body", "event_type"],
        "string_type",
        "Input should be a valid string",
    ),
    "an empty event_type": (
        notification(""),
        ["body", "event_type"],
        "string_too_short",
        "String should have at least 1 character",
    ),
    "an event_type of 256 characters": (
        notification("a." + "b" * 254),
        ["body", "event_type"],
        "string_too_long",
        "String should have at most 255 characters",
    ),
}
PATTERN = r"String should match pattern '^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$'"
for name, event_type in {
    "a newline in the event_type": "baremetal.node.x\n2030-01-01 CRITICAL forged",
    "a carriage return in the event_type": "baremetal.node.x\rforged",
    "an ANSI escape in the event_type": "baremetal.node.\x1b[2Jx",
    "HTML as the event_type": "<script>alert(1)</script>",
    "a space in the event_type": "baremetal node",
    "an empty segment in the event_type": "baremetal..node",
    "a leading dot in the event_type": ".baremetal",
    "a non-ASCII letter in the event_type": "baremetal.nöde",
}.items():
    BAD_BODIES[name] = (
        notification(event_type),
        ["body", "event_type"],
        "string_pattern_mismatch",
        PATTERN,
    )
for field in ("publisher_id", "priority", "message_id", "timestamp"):
    BAD_BODIES[f"a {field} of 256 characters"] = (
        notification(**{field: "p" * 256}),
        ["body", field],
        "string_too_long",
        "String should have at most 255 characters",
    )


@pytest.mark.parametrize(
    "body, loc, kind, message", BAD_BODIES.values(), ids=BAD_BODIES
)
@pytest.mark.anyio
async def test_a_body_that_is_not_a_notification_is_422_naming_the_problem(
    bounded, body, loc, kind, message
):
    node = fresh_node()
    async with open_stream(bounded.ws_url) as stream:
        answer = await anyio.to_thread.run_sync(lambda: post_json(bounded, body))
        good = await post_event(bounded, **ironic("power_set.end", node))
        # The first event the client gets is the good one, posted after.
        frames = await stream.receive_until(lambda f: f.get("node_name") == node)

    assert answer.status == 422, answer
    [error] = answer.json()["detail"]
    assert (error["loc"], error["type"], error["msg"]) == (loc, kind, message)
    assert [frame["id"] for frame in frames] == [good["id"]]


@pytest.mark.anyio
async def test_nesting_at_max_json_depth_and_a_body_at_max_event_bytes_get_in(
    bounded,
):
    node = fresh_node()
    deepest = json.loads(notification(payload=nested(MAX_JSON_DEPTH)))
    deepest["payload"]["ironic_object.data"] = {"name": node}
    async with open_stream(bounded.ws_url, node_filters=[node]) as stream:
        answer = await anyio.to_thread.run_sync(lambda: post_json(bounded, deepest))
        frame = await stream.receive()
    assert answer.status == 202, answer
    assert frame["data"]["a"] == deepest["payload"]["a"]

    largest = body_of_size(MAX_EVENT_BYTES, node)
    answer = await anyio.to_thread.run_sync(lambda: post_json(bounded, largest))
    assert answer.status == 202, answer


@pytest.mark.anyio
async def test_the_largest_event_admitted_reaches_a_client_with_default_limits(
    bounded,
):
    """What the ingest admits, a client takes: the stream's own clients
    (osism events watch, the harness's) use websockets' default message
    limit, 1 MiB, like MAX_EVENT_BYTES."""
    node = fresh_node()
    largest = body_of_size(MAX_EVENT_BYTES, node)
    async with open_stream(bounded.ws_url, node_filters=[node]) as stream:
        answer = await anyio.to_thread.run_sync(lambda: post_json(bounded, largest))
        assert answer.status == 202, answer
        try:
            frame = await stream.receive()
        except ConnectionClosed as e:
            raise AssertionError(
                f"the client was closed with {e.rcvd or e.sent}: the frame of an "
                f"event of {MAX_EVENT_BYTES} bytes is larger than websockets' "
                "default max_size"
            ) from None
    assert frame["data"]["blob"] == json.loads(largest)["payload"]["blob"]
    await still_streams(bounded)


# --------------------------------------------------------------------------
# Memory after a flood

FLOOD_POSTS = 200
FLOOD_BODY_BYTES = 1_000_000


def settled_rss_kib(pid: int, timeout: float = 15.0) -> int:
    """The process's RSS once it stopped changing (two samples half a
    second apart within 1 MiB)."""
    samples = [sample(pid).rss_kib]

    def settled() -> bool:
        time.sleep(0.5)  # the interval between two samples
        samples.append(sample(pid).rss_kib)
        return abs(samples[-1] - samples[-2]) < 1024

    wait_for(settled, timeout=timeout, what="the server's RSS settling")
    return samples[-1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("launch", ["cli", "uvicorn"])
@pytest.mark.anyio
async def test_memory_returns_to_its_baseline_after_a_flood_of_large_posts(
    api_server, own_redis_server, launch
):
    """200 posts of nearly 1 MiB, four at a time, through Redis (a server of
    the test's own, which keeps them in its history stream) to a client that
    reads them all: the server's RSS goes back to where it was. What it keeps
    is bounded by bytes: the event history by EVENT_HISTORY_MAX_BYTES (16
    MiB), the frames encoded once for all clients (cli) by 4 MiB."""
    server = api_server("redis", redis_server=own_redis_server, launch=launch)
    assert server.process is not None
    pid = server.process.pid
    node = fresh_node()
    body = body_of_size(FLOOD_BODY_BYTES, node)
    async with open_stream(server.ws_url, node_filters=[node]) as stream:
        # Warm up: the first large posts load what the server keeps anyway.
        for _ in range(3):
            assert (await anyio.to_thread.run_sync(post_json, server, body)).status
            await stream.receive()
        baseline = settled_rss_kib(pid)

        received: List[int] = []

        async def read_all() -> None:
            while len(received) < FLOOD_POSTS:
                frame = await stream.receive(timeout=30)
                received.append(len(frame["data"]["blob"]))

        def flood() -> List[int]:
            with ThreadPoolExecutor(4) as pool:
                answers = pool.map(
                    lambda _: post_json(server, body), range(FLOOD_POSTS)
                )
                return [answer.status for answer in answers]

        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read_all)
            statuses = await anyio.to_thread.run_sync(flood)
        flood_s = time.monotonic() - started
        assert statuses == [202] * FLOOD_POSTS
        assert len(received) == FLOOD_POSTS

    peak = sample(pid).hwm_kib
    settled = settled_rss_kib(pid)
    counters = (await get_health(server))["bridge"]["counters"]
    MEASUREMENTS.append(
        f"flood of {FLOOD_POSTS} posts of {FLOOD_BODY_BYTES} bytes ({launch}) "
        f"in {flood_s:.1f} s: server RSS {baseline / 1024:.0f} MiB before, peak "
        f"{peak / 1024:.0f} MiB, {settled / 1024:.0f} MiB settled; Redis "
        f"errors {counters.get('redis_errors', 0)}, subscriber restarts "
        f"{counters.get('subscriber_restarts', 0)}"
    )
    await still_streams(server)
    # Redis took every event without cutting the subscriber off.
    assert counters.get("redis_errors", 0) == 0
    # Back to the baseline, give or take a fifth of what went through.
    flood_kib = FLOOD_POSTS * FLOOD_BODY_BYTES // 1024
    assert settled - baseline < flood_kib // 5, (
        f"RSS {baseline} KiB before the flood, {settled} KiB after it settled "
        f"(peak {peak} KiB)"
    )


# --------------------------------------------------------------------------
# Client frames


async def error_of(stream: EventStream, frame: Any) -> str:
    await stream.send_json(frame)
    reply = await stream.receive()
    assert reply["type"] == "error", reply
    message: str = reply["message"]
    return message


@pytest.mark.anyio
async def test_filter_lists_beyond_their_bounds_get_an_error_frame(bounded):
    node = fresh_node()
    too_many = [f"{node}-{n}" for n in range(MAX_FILTER_VALUES + 1)]
    query = "&".join(f"node_filters={value}" for value in too_many)
    async with open_stream(f"{bounded.ws_url}?{query}") as stream:
        on_connect = await stream.receive()
        over_count = await error_of(
            stream, {"action": "set_filters", "node_filters": too_many}
        )
        over_length = await error_of(
            stream, {"action": "set_filters", "event_filters": ["e" * 256]}
        )
        # The connection stays open, its filters unchanged, and works.
        reply = await stream.set_filters(node_filters=[node] * MAX_FILTER_VALUES)
        await post_event(bounded, **ironic("power_set.end", node))
        frame = await stream.receive()

    assert on_connect == {
        "type": "error",
        "message": "'node_filters' holds 6 values; at most 5",
    }
    assert over_count == "'node_filters' holds 6 values; at most 5"
    assert over_length == "a value of 'event_filters' is longer than 255 characters"
    assert reply["event_filters"] == []
    assert frame["node_name"] == node


@pytest.mark.anyio
async def test_a_flood_of_frames_gets_one_error_frame_then_close_1008(bounded):
    frames: List[Dict[str, Any]] = []
    async with open_stream(bounded.ws_url) as stream:
        # A burst, the frame over it and a burst more, at once: the server
        # takes the burst, refuses the rest, and closes on the last. (No
        # frame more: one sent after the close would still be unread when
        # the server closes its socket, the kernel would reset the
        # connection, and the client could lose the answers before it.)
        burst = 2 * FRAMES_PER_SECOND
        for _ in range(burst + 1 + burst):
            await stream.send_json({"action": "set_filters", "node_filters": ["n"]})
        with pytest.raises(ConnectionClosed):
            while True:
                frames.append(await stream.receive())
        close = stream.websocket.close_code, stream.websocket.close_reason

    assert close == (1008, "too many frames")
    # The burst is taken, the first frame over it gets the error, the rest
    # nothing; all of it before the close.
    assert [frame["type"] for frame in frames] == ["filter_update"] * burst + [
        "error"
    ], "answers queued for the client were not sent before the close"
    assert frames[-1]["message"] == (
        "too many frames: at most 2 a second; this one was ignored"
    )
    await still_streams(bounded)


@pytest.mark.anyio
async def test_one_client_more_than_websocket_max_clients_is_closed_with_1013(
    api_server,
):
    server = api_server("redis", env={"WEBSOCKET_MAX_CLIENTS": "2"})
    node = fresh_node()
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_stream(server.ws_url))
        second = await stack.enter_async_context(open_stream(server.ws_url))
        async with open_stream(server.ws_url) as third:
            with pytest.raises(ConnectionClosed):
                await third.receive()
            refused = third.websocket.close_code, third.websocket.close_reason
        posted = await post_event(server, **ironic("power_set.end", node))
        got = [(await client.receive())["id"] for client in (first, second)]
    assert refused == (1013, "too many clients")
    assert got == [posted["id"]] * 2
    assert "Refused a WebSocket client: 2 are connected" in server.output()

    # Once they left there is room again.
    await wait_for_health(server, lambda health: health["websocket"]["clients"] == 0)
    await still_streams(server)


# --------------------------------------------------------------------------
# schemathesis against a real uvicorn


@pytest.mark.timeout(60)
def test_schemathesis_finds_no_server_error_on_a_real_uvicorn(api_server):
    """Requests the schema allows and ones it does not, for every operation.

    (schemathesis' pytest loader, ``schemathesis.pytest.from_fixture``, fails
    under pytest 9 with "'Function' object has no attribute '_nodeid'"; the
    schema is loaded from the running server and its cases drawn through
    hypothesis instead.)"""
    server = api_server("redis", launch="uvicorn", env={"MAX_EVENT_BYTES": "10000"})
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )
    answered: List[Tuple[str, str, int]] = []

    @given(cases)
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: Any) -> None:
        response = case.call(timeout=10)
        answered.append((case.method, case.path, response.status_code))
        assert response.status_code < 500, (case.method, case.path, response.text)

    no_server_error()

    operations = {(method, path) for method, path, _ in answered}
    statuses = {status for _, _, status in answered}
    MEASUREMENTS.append(
        f"schemathesis on uvicorn: {len(answered)} requests, "
        f"{len(operations)} operations, statuses {sorted(statuses)}"
    )
    assert ("POST", "/v1/events") in operations
    assert {202, 422} <= statuses
    assert server.running()
