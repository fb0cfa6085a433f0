"""Issue 15, "Safe to expose", against real servers: who may read and write
(EVENTS_READ_TOKEN, EVENTS_WRITE_TOKEN, their *_FILE variants), which web
pages may ask (ALLOWED_ORIGINS), and logs nobody can forge. Every attempt
gets its clear answer, and the service then still streams to its other
clients. (The bounds of input are in test_security_input.py.)

The guarded server is started as OSISM's containers start it, ``uvicorn
osism.api:app``, in Redis mode, its tokens read from files.
"""

import contextlib
import json
import re
import uuid
from typing import Any, Dict, List, Tuple

import anyio
import pytest

from tests.harness.api_server import ApiServer
from tests.harness.clients import get_health
from tests.harness.notifications import ironic
from tests.harness.raw_clients import (
    Answer,
    open_stream_with,
    post_json,
    refused_upgrade,
    request,
)
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis]

READ = "read-" + uuid.uuid4().hex
WRITE = "write-" + uuid.uuid4().hex
ALLOWED = "http://dash.example"
EVIL = "http://evil.example"

READ_REFUSED = {
    "detail": "a valid read token is needed (Authorization: Bearer, or ?token=)"
}
WRITE_REFUSED = {"detail": "a valid write token is needed (Authorization: Bearer)"}
ORIGIN_REFUSED_WS = {"detail": "this origin may not connect (ALLOWED_ORIGINS)"}
ORIGIN_REFUSED_HTTP = {"detail": "this origin may not call the API (ALLOWED_ORIGINS)"}

# A log line as the API writes them (LOG_FORMAT text), to forge.
FORGED = "2030-01-01 00:00:00,000 CRITICAL osism.api: FORGED by a client"


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fresh_node() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def guarded(module_api_server, tmp_path_factory) -> ApiServer:
    """uvicorn osism.api:app with both tokens (from files) and one allowed
    origin, in Redis mode."""
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "read").write_text(READ + "\n")
    (secrets / "write").write_text(WRITE + "\n")
    return module_api_server(
        "redis",
        launch="uvicorn",
        env={
            "EVENTS_READ_TOKEN_FILE": str(secrets / "read"),
            "EVENTS_WRITE_TOKEN_FILE": str(secrets / "write"),
            "ALLOWED_ORIGINS": ALLOWED,
        },
    )


async def post(
    server: ApiServer, body: Any, headers: Dict[str, str], path: str = "/v1/events"
) -> Answer:
    data = json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    return await anyio.to_thread.run_sync(
        lambda: request(server, "POST", path, data, all_headers)
    )


async def post_legitimately(server: ApiServer, node: str) -> str:
    """Post an event about ``node`` with the write token; its id."""
    answer = await post(server, ironic("power_set.end", node), bearer(WRITE))
    assert answer.status == 202, answer
    event_id: str = answer.json()["id"]
    return event_id


async def still_streams(server: ApiServer, **connect: Any) -> None:
    """A client with the read token gets an event posted now: the service
    goes on serving its other clients."""
    node = fresh_node()
    headers = connect.pop("headers", bearer(READ))
    url = connect.pop("url", server.ws_url)
    async with open_stream_with(url, headers) as stream:
        await stream.set_filters(node_filters=[node])
        await post_legitimately(server, node)
        frame = await stream.receive()
    assert frame["node_name"] == node


# --------------------------------------------------------------------------
# Tokens

READ_ATTEMPTS = {
    "no token": ("", {}),
    "a wrong token": ("", bearer("guess")),
    "a wrong token in the query": ("?token=guess", {}),
    "an empty bearer token": ("", {"Authorization": "Bearer "}),
    "the write token": ("", bearer(WRITE)),
    "the write token in the query": (f"?token={WRITE}", {}),
    "the read token without Bearer": ("", {"Authorization": READ}),
    "the read token as Basic": ("", {"Authorization": f"Basic {READ}"}),
    "the read token in another header": ("", {"X-Auth-Token": READ}),
    "the read token as a cookie": ("", {"Cookie": f"token={READ}"}),
    "the read token in another parameter": (f"?access_token={READ}", {}),
    "the read token cut short": ("", bearer(READ[:-1])),
    "the read token and more": ("", bearer(READ + "x")),
}


@pytest.mark.parametrize("query, headers", READ_ATTEMPTS.values(), ids=READ_ATTEMPTS)
@pytest.mark.anyio
async def test_reading_without_the_read_token_is_401_before_the_upgrade(
    guarded, query, headers
):
    answer = await refused_upgrade(guarded.ws_url + query, headers)

    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert json.loads(answer.body) == READ_REFUSED
    await still_streams(guarded)


WRITE_ATTEMPTS = {
    "no token": ("", {}),
    "a wrong token": ("", bearer("guess")),
    "the read token": ("", bearer(READ)),
    "the write token in the query": (f"?token={WRITE}", {}),
    "the write token without Bearer": ("", {"Authorization": WRITE}),
    "the write token as Basic": ("", {"Authorization": f"Basic {WRITE}"}),
    "the write token in another header": ("", {"X-Auth-Token": WRITE}),
    "the write token cut short": ("", bearer(WRITE[:-1])),
}


@pytest.mark.parametrize("query, headers", WRITE_ATTEMPTS.values(), ids=WRITE_ATTEMPTS)
@pytest.mark.anyio
async def test_posting_without_the_write_token_is_401_and_nothing_gets_in(
    guarded, query, headers
):
    node = fresh_node()
    async with open_stream_with(guarded.ws_url, bearer(READ)) as stream:
        await stream.set_filters(node_filters=[node])

        answer = await post(
            guarded, ironic("forged.end", node), headers, "/v1/events" + query
        )
        legitimate = await post_legitimately(guarded, node)
        frame = await stream.receive()

    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == WRITE_REFUSED
    # The first event about the node is the legitimate one, posted after.
    assert (frame["id"], frame["event_type"]) == (
        legitimate,
        "baremetal.node.power_set.end",
    )


@pytest.mark.anyio
async def test_the_read_token_in_a_header_or_in_the_query_opens_the_stream(guarded):
    await still_streams(guarded, headers=bearer(READ))
    await still_streams(guarded, headers={}, url=f"{guarded.ws_url}?token={READ}")


@pytest.mark.anyio
async def test_no_token_is_ever_written_to_the_output_or_shown(guarded):
    """The read token given where it belongs (the query), the write token
    and a guess given there by mistake: uvicorn's request lines show
    ``token=***``. (A token put in a parameter of another name, say
    ``?access_token=``, is not a token to the API, and is logged as it is.)"""
    start = len(guarded.output())
    await still_streams(guarded, headers={}, url=f"{guarded.ws_url}?token={READ}")
    await refused_upgrade(f"{guarded.ws_url}?token={WRITE}")
    await refused_upgrade(f"{guarded.ws_url}?node_filters=n&token=guess-{READ}")

    def output() -> str:
        return guarded.output()[start:]

    wait_for(
        lambda: output().count("/v1/events/openstack?token=***") == 2
        and "?node_filters=n&token=***" in output(),
        what="uvicorn's three request lines with the masked token",
    )
    health = json.dumps(await get_health(guarded))
    for secret in (READ, WRITE):
        assert secret not in output()
        assert secret not in health


# --------------------------------------------------------------------------
# Origins

FOREIGN_ORIGINS = [
    EVIL,
    "null",
    "http://dash.example.evil.example",
    "https://dash.example",
    "http://dash.example:8080",
]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
@pytest.mark.anyio
async def test_a_page_of_a_foreign_origin_may_not_connect_even_with_the_token(
    guarded, origin
):
    answer = await refused_upgrade(guarded.ws_url, {**bearer(READ), "Origin": origin})

    assert answer.status == 403
    assert json.loads(answer.body) == ORIGIN_REFUSED_WS
    await still_streams(guarded)


@pytest.mark.anyio
async def test_the_apis_own_origin_an_allowed_one_and_no_origin_may_connect(guarded):
    for origin in (guarded.base_url, ALLOWED):
        await still_streams(guarded, headers={**bearer(READ), "Origin": origin})
    await still_streams(guarded, headers=bearer(READ))


@pytest.mark.anyio
async def test_a_page_of_a_foreign_origin_may_not_post_even_with_the_token(guarded):
    node = fresh_node()
    async with open_stream_with(guarded.ws_url, bearer(READ)) as stream:
        await stream.set_filters(node_filters=[node])

        answer = await post(
            guarded, ironic("forged.end", node), {**bearer(WRITE), "Origin": EVIL}
        )
        legitimate = await post_legitimately(guarded, node)
        frame = await stream.receive()

    assert answer.status == 403
    assert answer.json() == ORIGIN_REFUSED_HTTP
    assert "access-control-allow-origin" not in answer.headers
    assert frame["id"] == legitimate


def preflight(server: ApiServer, origin: str) -> Answer:
    return request(
        server,
        "OPTIONS",
        "/v1/events",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_answers_an_allowed_origin_and_refuses_a_foreign_one(guarded):
    foreign = preflight(guarded, EVIL)
    allowed = preflight(guarded, ALLOWED)
    posted = post_json(
        guarded,
        ironic("power_set.end", fresh_node()),
        {**bearer(WRITE), "Origin": ALLOWED},
    )
    foreign_health = request(
        guarded, "GET", "/v1/events/health", headers={"Origin": EVIL}
    )

    assert foreign.status == 403
    assert "access-control-allow-origin" not in foreign.headers
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert posted.status == 202
    assert posted.headers["access-control-allow-origin"] == ALLOWED
    assert (foreign_health.status, foreign_health.json()) == (403, ORIGIN_REFUSED_HTTP)


# --------------------------------------------------------------------------
# The acceptance test of issue 15

READERS = {
    "no token": ("", {}),
    "a wrong token": ("", bearer("guess")),
    "a wrong token in the query": ("?token=guess", {}),
    "the read token in another header": ("", {"X-Auth-Token": READ}),
    "the read token in another parameter": (f"?access_token={READ}", {}),
    "the write token": ("", bearer(WRITE)),
    "the write token in the query": (f"?token={WRITE}", {}),
    "a foreign origin with the read token": ("", {**bearer(READ), "Origin": EVIL}),
    "a foreign origin, token in the query": (f"?token={READ}", {"Origin": "null"}),
}
WRITERS = {
    "no token": ("", {}),
    "a wrong token": ("", bearer("guess")),
    "the write token in the query": (f"?token={WRITE}", {}),
    "the write token in another header": ("", {"X-Auth-Token": WRITE}),
    "the read token": ("", bearer(READ)),
    "a foreign origin with the write token": ("", {**bearer(WRITE), "Origin": EVIL}),
}


@pytest.mark.timeout(20)
@pytest.mark.anyio
async def test_nobody_without_the_read_token_gets_an_event_nor_without_the_write_token_puts_one_in(  # noqa: E501
    guarded, redis_server
):
    node = fresh_node()
    published: List[Dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        # What reaches Redis: every event that got in, wherever it is read.
        client = stack.enter_context(contextlib.closing(redis_server.client()))
        pubsub = stack.enter_context(contextlib.closing(client.pubsub()))
        pubsub.subscribe(guarded.channel)
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"

        async with open_stream_with(guarded.ws_url, bearer(READ)) as legitimate:
            refused_reads: Dict[str, Tuple[int, Any]] = {}
            refused_writes: Dict[str, Tuple[int, Any]] = {}
            legitimate_ids = []
            for round_ in range(3):
                for name, (query, headers) in READERS.items():
                    answer = await refused_upgrade(guarded.ws_url + query, headers)
                    refused_reads[name] = (answer.status, json.loads(answer.body))
                for name, (query, headers) in WRITERS.items():
                    answer = await post(
                        guarded,
                        ironic(f"forged{round_}.end", node),
                        headers,
                        "/v1/events" + query,
                    )
                    refused_writes[name] = (answer.status, answer.json())
                legitimate_ids.append(await post_legitimately(guarded, node))

            # Everything the legitimate client got, up to its third event:
            # no heartbeat comes (HEARTBEAT_INTERVAL is an hour), so any
            # other frame would be an event an attacker put in.
            frames = await legitimate.receive_until(
                lambda frame: frame.get("id") == legitimate_ids[-1]
            )
            await still_streams(guarded)

        def on_the_channel() -> List[Dict[str, Any]]:
            message = pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "message":
                published.append(json.loads(message["data"]))
            return [e for e in published if e["payload"] == ironic("", node)["payload"]]

        wait_for(
            lambda: len(on_the_channel()) >= 3,
            what="the three legitimate events on the Redis channel",
        )
        # Anything an attacker might have put in was posted before the last
        # legitimate event: on the channel, it would have come before it.
        # Whatever follows within a moment is read too.
        while True:
            message = pubsub.get_message(timeout=0.2)
            if message is None:
                break
            if message["type"] == "message":
                published.append(json.loads(message["data"]))

    assert refused_reads == {
        name: (403, ORIGIN_REFUSED_WS) if "origin" in name else (401, READ_REFUSED)
        for name in READERS
    }
    assert refused_writes == {
        name: (403, ORIGIN_REFUSED_HTTP) if "origin" in name else (401, WRITE_REFUSED)
        for name in WRITERS
    }
    # The forged posts name this test's node, as the legitimate ones do; an
    # event of another test on the shared server (one it posted just before
    # this client connected, fanned out a batch interval later) names its own.
    ours = [f for f in frames if f["node_name"] == node]
    assert [(f["id"], f["event_type"], f["node_name"]) for f in ours] == [
        (event_id, "baremetal.node.power_set.end", node) for event_id in legitimate_ids
    ]
    about_node = [e for e in published if e["payload"] == ironic("", node)["payload"]]
    assert [(e["id"], e["event_type"]) for e in about_node] == [
        (event_id, "baremetal.node.power_set.end") for event_id in legitimate_ids
    ]


# --------------------------------------------------------------------------
# Logs


@pytest.fixture(scope="module")
def debug_server(module_api_server) -> ApiServer:
    """osism service api at LOG_LEVEL=debug, text logs, tokens from the
    environment."""
    return module_api_server(
        "redis",
        env={
            "LOG_LEVEL": "debug",
            "EVENTS_READ_TOKEN": READ,
            "EVENTS_WRITE_TOKEN": WRITE,
        },
    )


def forged_lines(output: str) -> List[str]:
    """Lines of the output that are not the server's own: one that starts
    as the forged record, or one with a control character (an escape
    sequence for the terminal, a carriage return hiding what came before)."""
    return [
        line
        for line in output.splitlines()
        if line.startswith(FORGED[:10]) or re.search("[\x00-\x08\x0b-\x1f\x7f]", line)
    ]


@pytest.mark.anyio
async def test_a_filter_change_is_logged_at_debug_and_a_value_cannot_forge_a_line(
    debug_server,
):
    server = debug_server
    node = fresh_node()
    hostile = f"{node}\n{FORGED}\x1b[2J"
    async with open_stream_with(server.ws_url, bearer(READ)) as stream:
        reply = await stream.set_filters(node_filters=[hostile])
    assert reply["node_filters"] == [hostile]

    line = wait_for(
        lambda: [
            line
            for line in server.output().splitlines()
            if " DEBUG " in line and node in line
        ],
        what="the filter change at DEBUG",
    )
    assert " osism.websocket: WebSocket client " in line[0]
    assert "filters: events=[] nodes=['" in line[0]
    assert forged_lines(server.output()) == []
    await still_streams(server)


@pytest.mark.anyio
async def test_an_event_from_redis_cannot_forge_a_line(debug_server, redis_server):
    """A message on the channel (any process that can publish there sends
    it) whose event type and node name hold a newline and escapes: streamed
    as it is, logged escaped."""
    server = debug_server
    node = f"{fresh_node()}\n{FORGED}\x1b[31m"
    event_type = f"baremetal.node.x\r\n{FORGED}\x1b]0;title\x07"
    message = {
        "event_type": event_type,
        "payload": {"ironic_object.data": {"name": node, "uuid": "u-1"}},
    }
    async with open_stream_with(server.ws_url, bearer(READ)) as stream:
        await stream.set_filters(node_filters=[node])
        with contextlib.closing(redis_server.client()) as client:
            assert client.publish(server.channel, json.dumps(message)) == 1
        frame = await stream.receive()

    assert (frame["event_type"], frame["node_name"]) == (event_type, node)
    # At DEBUG the broadcaster names the event type of every event it sends.
    wait_for(
        lambda: "baremetal.node.x\\r\\n2030-01-01" in server.output(),
        what="the event type written escaped",
    )
    assert forged_lines(server.output()) == []
    await still_streams(server)


@pytest.mark.anyio
async def test_no_token_is_written_even_at_debug(debug_server):
    """At DEBUG uvicorn writes the lines of every WebSocket handshake: the
    request line and the headers, Authorization among them."""
    server = debug_server
    start = len(server.output())
    await still_streams(server, headers=bearer(READ))
    await still_streams(server, headers={}, url=f"{server.ws_url}?token={READ}")
    await refused_upgrade(server.ws_url, bearer(WRITE))

    def output() -> str:
        return server.output()[start:]

    wait_for(
        lambda: "?token=***" in output() and output().count("401") >= 1,
        what="the request lines of the three handshakes",
    )
    assert READ not in output()
    assert WRITE not in output()


@pytest.fixture(scope="module")
def json_server(module_api_server) -> ApiServer:
    """LOG_FORMAT=json at INFO, with room for 1,000 frames a second."""
    return module_api_server(
        "redis",
        env={"LOG_FORMAT": "json", "WEBSOCKET_MAX_FRAMES_PER_SECOND": "1000"},
    )


def uvicorns_own(line: str) -> bool:
    """A line of uvicorn's own loggers, which LOG_FORMAT does not change
    ("INFO:     Uvicorn running on ...")."""
    return re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):\s", line) is not None


def osism_json_lines(output: str) -> List[Dict[str, Any]]:
    """Every line but uvicorn's own, each parsed as JSON (failing if one is
    not)."""
    entries = []
    for line in output.splitlines():
        if uvicorns_own(line):
            continue
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


@pytest.mark.anyio
async def test_log_format_json_writes_every_line_of_osism_as_json(
    json_server, redis_server
):
    server = json_server
    await still_streams(server, headers={})
    with contextlib.closing(redis_server.client()) as client:
        # Logged as errors by the subscriber, with outside text in them.
        client.publish(server.channel, json.dumps({"event_type": f"x\n{FORGED}"}))
        client.publish(server.channel, f"not JSON\n{FORGED}")

    wait_for(
        lambda: server.output().count("osism.event_bridge") >= 2
        and "not an event" in server.output(),
        what="the subscriber's two errors",
    )
    entries = osism_json_lines(server.output())
    loggers = {entry["logger"] for entry in entries}
    assert {"osism.api", "osism.websocket", "osism.event_bridge"} <= loggers
    assert all(
        set(entry) == {"time", "level", "logger", "message"} for entry in entries
    )
    messages = [entry["message"] for entry in entries]
    assert "osism events API started" in messages
    assert (
        "Skipping Redis message that is not an event: missing or non-object "
        "'payload'" in messages
    )
    assert forged_lines(server.output()) == []


@pytest.mark.anyio
async def test_a_hundred_filter_changes_at_info_add_no_line_per_frame(json_server):
    server = json_server
    node = fresh_node()
    before = len(server.output().splitlines())
    async with open_stream_with(server.ws_url) as stream:
        for n in range(100):
            await stream.send_json(
                {"action": "set_filters", "node_filters": [f"{node}-{n}", node]}
            )
        replies = [await stream.receive() for _ in range(100)]
        await still_streams(server, headers={})
    assert [r["type"] for r in replies] == ["filter_update"] * 100

    def new_lines() -> List[str]:
        return server.output().splitlines()[before:]

    # Two clients connected and went away, one event was posted: a few
    # lines of osism's and uvicorn's own; a line per frame would be 100.
    wait_for(
        lambda: sum("disconnected" in line for line in new_lines()) >= 2,
        what="both clients' disconnect lines",
    )
    assert not [line for line in new_lines() if node in line or "filter" in line]
    osism_lines = [line for line in new_lines() if not uvicorns_own(line)]
    assert len(osism_lines) <= 6, osism_lines
    assert len(new_lines()) < 20, new_lines()


@pytest.mark.anyio
async def test_the_token_files_are_read_and_health_stays_open(guarded):
    """The guarded server took its tokens from *_FILE (the tests above show
    they are enforced); health, liveness and the schema stay open."""
    health = await get_health(guarded)
    liveness = await anyio.to_thread.run_sync(lambda: request(guarded, "GET", "/v1"))
    schema = await anyio.to_thread.run_sync(
        lambda: request(guarded, "GET", "/openapi.json")
    )

    assert health["status"] == "ok"
    assert liveness.status == 200
    assert schema.status == 200
    assert "EVENTS_READ_TOKEN" not in guarded.env
    assert "EVENTS_WRITE_TOKEN" not in guarded.env
    await still_streams(guarded, headers=bearer(READ))
