"""Unit tests of osism.watch (`osism events watch`), against a scripted fake server.

websockets' ``connect(url)`` is replaced by :class:`FakeConnect`: each call is
one connection attempt, which either fails in the handshake or yields a
:class:`FakeConnection` that replays scripted frames. When the script runs out
the fake raises :class:`EndOfScript`, which the watcher does not handle: that
is how a test ends a watch that would otherwise run forever. Sleeps are
recorded, never slept.
"""

import io
import json
from typing import Any, Dict, List, Optional, Union

import anyio
import anyio.lowlevel
import click
import pytest
from click.testing import CliRunner
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.exceptions import InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from osism.cli import main
from osism.services.client_frames import error_frame, filter_update_frame
from osism.watch import Filters, format_event, resume_url, watch, watch_forever

URL = "ws://manager:8000/v1/events/openstack"
FILTERS = Filters(["baremetal.node.power_set.end"], ["node1"], ["baremetal"])
SET_FILTERS = {
    "action": "set_filters",
    "event_filters": ["baremetal.node.power_set.end"],
    "node_filters": ["node1"],
    "service_filters": ["baremetal"],
}
PROG = "osism events watch"


class EndOfScript(Exception):
    """The fake server has nothing more to say."""


Frame = Union[str, bytes, BaseException]


class FakeConnection:
    """Mirrors websockets' ClientConnection: async context manager, send, recv."""

    def __init__(self, *frames: Frame) -> None:
        self.frames = list(frames)
        self.sent: List[str] = []
        self.closed = False

    async def __aenter__(self) -> "FakeConnection":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.closed = True

    async def send(self, message: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(message)

    async def recv(self) -> Union[str, bytes]:
        await anyio.lowlevel.checkpoint()
        if not self.frames:
            raise EndOfScript
        frame = self.frames.pop(0)
        if isinstance(frame, BaseException):
            raise frame
        return frame


class FailedHandshake:
    """What ``connect(url)`` returns when the server cannot be reached."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __aenter__(self) -> FakeConnection:
        await anyio.lowlevel.checkpoint()
        raise self.error

    async def __aexit__(self, *exc_info: Any) -> None:
        raise AssertionError("never entered")


class FakeConnect:
    """Stands in for websockets' ``connect``: one scripted attempt per call."""

    def __init__(self, *attempts: Union[FakeConnection, BaseException]) -> None:
        self.attempts = list(attempts)
        self.urls: List[str] = []

    def __call__(self, url: str) -> Union[FakeConnection, FailedHandshake]:
        self.urls.append(url)
        if not self.attempts:
            raise EndOfScript
        attempt = self.attempts.pop(0)
        if isinstance(attempt, BaseException):
            return FailedHandshake(attempt)
        return attempt


class RecordedSleeps(List[float]):
    async def __call__(self, delay: float) -> None:
        await anyio.lowlevel.checkpoint()
        self.append(delay)


def event(
    event_type: str = "baremetal.node.power_set.end",
    node_name: Optional[str] = "node1",
    resource_id: Optional[str] = "abc-123",
    timestamp: str = "2026-11-25T07:00:00.123456Z",
) -> Dict[str, Any]:
    return {
        "id": "5d0c8f0e-0000-4000-8000-000000000001",
        "timestamp": timestamp,
        "event_type": event_type,
        "source": "openstack",
        "node_name": node_name,
        "data": {"service_type": "baremetal", "resource_id": resource_id},
    }


HEARTBEAT = {
    "id": "5d0c8f0e-0000-4000-8000-000000000002",
    "timestamp": "2026-11-25T07:00:30.000000Z",
    "event_type": "heartbeat",
    "source": "osism",
    "node_name": None,
    "data": {"message": "ping"},
}
FILTER_OK = json.dumps(filter_update_frame(*FILTERS))
REFUSED = ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 8000)")
LOST = ConnectionClosedError(None, None)


def line(**kwargs: Any) -> str:
    return format_event(event(**kwargs))


class Watched:
    """What a watch printed and slept, once its script has run out."""

    def __init__(self, out: str, sleeps: List[float]) -> None:
        self.lines = out.splitlines()
        self.sleeps = sleeps


async def run_watch(
    connect: FakeConnect,
    as_json: bool = False,
    raises: type = EndOfScript,
    match: Optional[str] = None,
    **kwargs: Any,
) -> Watched:
    out, sleeps = io.StringIO(), RecordedSleeps()
    with anyio.fail_after(5), pytest.raises(raises, match=match):
        await watch(URL, FILTERS, as_json, out, connect=connect, sleep=sleeps, **kwargs)
    return Watched(out.getvalue(), sleeps)


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> List[str]:
    return capsys.readouterr().err.splitlines()


class TestFormatEvent:
    def test_an_openstack_event_shows_time_type_node_resource_and_source(self):
        assert format_event(event()) == (
            "2026-11-25T07:00:00.123456Z baremetal.node.power_set.end "
            "node=node1 resource=abc-123 source=openstack"
        )

    def test_a_missing_node_and_resource_are_left_out(self):
        assert format_event(event(node_name=None, resource_id=None)) == (
            "2026-11-25T07:00:00.123456Z baremetal.node.power_set.end "
            "source=openstack"
        )

    def test_data_that_is_not_an_object_leaves_out_the_resource(self):
        odd = {**event(), "data": ["not", "a", "dict"], "source": None}

        assert format_event(odd) == (
            "2026-11-25T07:00:00.123456Z baremetal.node.power_set.end node=node1"
        )

    @pytest.mark.parametrize(
        "odd",
        [
            {"event_type": "compute.instance.create.end"},
            {"timestamp": "2026-11-25T07:00:00Z", "event_type": 42},
            {},
        ],
    )
    def test_an_event_without_time_or_type_is_printed_as_its_json(self, odd):
        assert format_event(odd) == json.dumps(odd)

    def test_something_that_is_not_an_object_is_printed_as_json(self):
        assert format_event(["a", 1]) == '["a", 1]'  # type: ignore[arg-type]


@pytest.mark.anyio
class TestSubscribe:
    async def test_the_set_filters_frame_carries_all_three_lists(self):
        connection = FakeConnection(FILTER_OK)

        await run_watch(FakeConnect(connection))

        assert [json.loads(frame) for frame in connection.sent] == [SET_FILTERS]

    async def test_empty_filters_are_sent_as_empty_lists(self):
        connection = FakeConnection(FILTER_OK)
        out = io.StringIO()

        with anyio.fail_after(5), pytest.raises(EndOfScript):
            await watch(
                URL, Filters([], [], []), out=out, connect=FakeConnect(connection)
            )

        assert json.loads(connection.sent[0]) == {
            "action": "set_filters",
            "event_filters": [],
            "node_filters": [],
            "service_filters": [],
        }

    async def test_frames_before_the_filter_update_are_not_printed(self, capsys):
        unfiltered = event("compute.instance.create.end", node_name="other")
        connection = FakeConnection(
            json.dumps(unfiltered), "not json", json.dumps(HEARTBEAT), FILTER_OK
        )

        watched = await run_watch(FakeConnect(connection), as_json=True)

        assert watched.lines == []
        assert stderr_lines(capsys) == [f"{PROG}: connected to {URL}"]

    async def test_without_a_filter_update_it_never_reports_connected(self, capsys):
        connection = FakeConnection(json.dumps(event()))

        watched = await run_watch(FakeConnect(connection))

        assert (watched.lines, stderr_lines(capsys)) == ([], [])

    async def test_an_error_reply_ends_the_watch_with_the_servers_message(self):
        message = "'node_filters' must be a list of strings"
        connect = FakeConnect(FakeConnection(json.dumps(error_frame(message))))

        with anyio.fail_after(5), pytest.raises(click.ClickException) as raised:
            await watch(URL, FILTERS, out=io.StringIO(), connect=connect)

        assert raised.value.message == f"the server rejected the filters: {message}"
        assert connect.urls == [URL]


@pytest.mark.anyio
class TestPrinting:
    async def test_events_are_printed_in_order_as_readable_lines(self, capsys):
        connection = FakeConnection(
            FILTER_OK,
            json.dumps(event(resource_id="r1")),
            json.dumps(event(resource_id="r2", node_name=None)),
            json.dumps(event("baremetal.node.provision_set.end", resource_id="r3")),
        )

        watched = await run_watch(FakeConnect(connection))

        assert watched.lines == [
            "2026-11-25T07:00:00.123456Z baremetal.node.power_set.end "
            "node=node1 resource=r1 source=openstack",
            "2026-11-25T07:00:00.123456Z baremetal.node.power_set.end "
            "resource=r2 source=openstack",
            "2026-11-25T07:00:00.123456Z baremetal.node.provision_set.end "
            "node=node1 resource=r3 source=openstack",
        ]
        assert stderr_lines(capsys) == [f"{PROG}: connected to {URL}"]

    async def test_heartbeats_are_hidden_in_readable_mode(self):
        connection = FakeConnection(
            FILTER_OK, json.dumps(HEARTBEAT), json.dumps(event()), json.dumps(HEARTBEAT)
        )

        watched = await run_watch(FakeConnect(connection))

        assert watched.lines == [line()]

    async def test_json_mode_prints_each_frame_as_received_heartbeats_too(self):
        frames = [json.dumps(HEARTBEAT), json.dumps(event(), indent=None)]
        connection = FakeConnection(FILTER_OK, *frames)

        watched = await run_watch(FakeConnect(connection), as_json=True)

        assert watched.lines == frames

    async def test_a_frame_that_is_not_a_json_object_is_printed_as_it_is(self):
        connection = FakeConnection(FILTER_OK, "[1, 2]", "hello")

        watched = await run_watch(FakeConnect(connection))

        assert watched.lines == ["[1, 2]", "hello"]

    async def test_binary_frames_are_decoded_as_utf8(self):
        connection = FakeConnection(
            FILTER_OK.encode(), json.dumps(event(node_name="knoten-ä")).encode()
        )

        watched = await run_watch(FakeConnect(connection))

        assert watched.lines == [line(node_name="knoten-ä")]

    async def test_each_line_is_flushed_as_it_is_written(self):
        class RecordingOut(io.StringIO):
            def __init__(self) -> None:
                super().__init__()
                self.flushed: List[str] = []

            def flush(self) -> None:
                self.flushed.append(self.getvalue())

        out = RecordingOut()
        connect = FakeConnect(
            FakeConnection(FILTER_OK, json.dumps(event()), json.dumps(event()))
        )

        with anyio.fail_after(5), pytest.raises(EndOfScript):
            await watch(URL, FILTERS, out=out, connect=connect)

        assert out.flushed == [line() + "\n", 2 * (line() + "\n")]

    async def test_standard_output_is_the_default(self, capsys):
        connect = FakeConnect(FakeConnection(FILTER_OK, json.dumps(event())))

        with anyio.fail_after(5), pytest.raises(EndOfScript):
            await watch(URL, FILTERS, connect=connect)

        assert capsys.readouterr().out == line() + "\n"

    async def test_a_broken_output_ends_the_watch_instead_of_reconnecting(self):
        class BrokenOut(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError(32, "Broken pipe")

        connection = FakeConnection(FILTER_OK, json.dumps(event()))
        connect = FakeConnect(connection, FakeConnection(FILTER_OK))

        with anyio.fail_after(5), pytest.raises(BrokenPipeError):
            await watch(URL, FILTERS, out=BrokenOut(), connect=connect)

        assert connect.urls == [URL]
        assert connection.closed


@pytest.mark.anyio
class TestReconnect:
    async def test_a_refused_connection_is_retried_with_doubling_backoff(self, capsys):
        connect = FakeConnect(
            REFUSED, REFUSED, FakeConnection(FILTER_OK, json.dumps(event()))
        )

        watched = await run_watch(connect)

        assert watched.sleeps == [0.5, 1.0]
        assert watched.lines == [line()]
        assert connect.urls == [URL, URL, URL]
        reason = "[Errno 111] Connect call failed ('10.0.0.5', 8000)"
        assert stderr_lines(capsys) == [
            f"{PROG}: cannot connect to {URL} ({reason}); reconnecting in 0.5 s",
            f"{PROG}: cannot connect to {URL} ({reason}); reconnecting in 1.0 s",
            f"{PROG}: connected to {URL}",
        ]

    async def test_a_lost_connection_reconnects_and_sends_the_filters_again(
        self, capsys
    ):
        first = FakeConnection(FILTER_OK, LOST)
        second = FakeConnection(FILTER_OK, json.dumps(event(resource_id="r2")))

        watched = await run_watch(FakeConnect(first, second))

        assert watched.lines == [line(resource_id="r2")]
        assert watched.sleeps == [0.5]
        assert [json.loads(f) for f in first.sent + second.sent] == 2 * [SET_FILTERS]
        assert first.closed
        assert stderr_lines(capsys) == [
            f"{PROG}: connected to {URL}",
            f"{PROG}: connection to {URL} lost (no close frame received or sent); "
            "reconnecting in 0.5 s",
            f"{PROG}: connected to {URL}",
        ]

    async def test_a_normal_close_by_the_server_is_reconnected_too(self, capsys):
        going_away = ConnectionClosedOK(Close(1001, "bye"), Close(1001, "bye"), True)
        connect = FakeConnect(
            FakeConnection(FILTER_OK, going_away), FakeConnection(FILTER_OK)
        )

        watched = await run_watch(connect)

        assert watched.sleeps == [0.5]
        assert stderr_lines(capsys)[1] == (
            f"{PROG}: connection to {URL} lost ({going_away}); reconnecting in 0.5 s"
        )

    async def test_a_connection_lost_before_the_filter_update_is_retried(self):
        connect = FakeConnect(FakeConnection(LOST), FakeConnection(FILTER_OK))

        watched = await run_watch(connect)

        assert watched.sleeps == [0.5]
        assert connect.urls == [URL, URL]

    async def test_an_error_without_a_message_is_named_by_its_type(self, capsys):
        connect = FakeConnect(TimeoutError(), FakeConnection(FILTER_OK))

        await run_watch(connect)

        assert stderr_lines(capsys)[0] == (
            f"{PROG}: cannot connect to {URL} (TimeoutError); reconnecting in 0.5 s"
        )

    async def test_backoff_is_capped_and_reset_after_a_successful_connect(self):
        connect = FakeConnect(
            REFUSED,
            REFUSED,
            REFUSED,
            REFUSED,
            FakeConnection(FILTER_OK, LOST),
            REFUSED,
            REFUSED,
        )

        watched = await run_watch(connect, initial_backoff=1.0, max_backoff=3.0)

        assert watched.sleeps == [1.0, 2.0, 3.0, 3.0, 1.0, 2.0, 3.0]

    async def test_a_server_error_status_is_retried(self):
        unavailable = InvalidStatus(Response(503, "Service Unavailable", Headers()))
        connect = FakeConnect(unavailable, FakeConnection(FILTER_OK))

        watched = await run_watch(connect)

        assert watched.sleeps == [0.5]


def event_with_id(event_id: str, resource_id: str) -> Dict[str, Any]:
    return {**event(resource_id=resource_id), "id": event_id}


RESUME_URL = (
    f"{URL}?event_filters=baremetal.node.power_set.end&node_filters=node1"
    "&service_filters=baremetal&last_event_id=e1"
)


@pytest.mark.anyio
class TestResume:
    async def test_it_reconnects_after_its_last_event_and_says_what_was_replayed(
        self, capsys
    ):
        first = FakeConnection(
            FILTER_OK,
            json.dumps(event_with_id("e1", "r1")),
            json.dumps(HEARTBEAT),
            LOST,
        )
        second = FakeConnection(
            FILTER_OK,
            json.dumps(event_with_id("e2", "r2")),
            json.dumps({"type": "resume", "status": "success", "replayed": 1}),
            json.dumps(event_with_id("e3", "r3")),
            LOST,
        )
        third = FakeConnection(json.dumps({"type": "resume", "replayed": 0}))
        connect = FakeConnect(first, second, third)

        watched = await run_watch(connect)

        assert watched.lines == [line(resource_id=r) for r in ("r1", "r2", "r3")]
        # The heartbeat's id is not an event's.
        assert connect.urls == [URL, RESUME_URL, RESUME_URL.replace("=e1", "=e3")]
        assert second.sent == []
        err = stderr_lines(capsys)
        assert err[2:4] == [
            f"{PROG}: connected to {URL}",
            f"{PROG}: resumed after event e1: 1 events replayed",
        ]

    async def test_a_gap_is_said_and_the_live_stream_goes_on(self, capsys):
        first = FakeConnection(FILTER_OK, json.dumps(event_with_id("e1", "r1")), LOST)
        gap = {"type": "gap", "last_event_id": "e1", "message": "too old"}
        second = FakeConnection(json.dumps(gap), json.dumps(event_with_id("e9", "r9")))

        watched = await run_watch(FakeConnect(first, second))

        assert watched.lines == [line(resource_id="r1"), line(resource_id="r9")]
        assert stderr_lines(capsys)[-1] == (
            f"{PROG}: events after e1 may be missing (a gap): too old"
        )

    async def test_a_resume_the_server_refuses_ends_the_watch(self):
        first = FakeConnection(FILTER_OK, json.dumps(event_with_id("e1", "r1")), LOST)
        second = FakeConnection(json.dumps(error_frame("no such filter")))

        await run_watch(
            FakeConnect(first, second),
            raises=click.ClickException,
            match="the server rejected the filters or the resume: no such filter",
        )

    async def test_other_frames_before_the_reply_are_printed(self):
        first = FakeConnection(FILTER_OK, json.dumps(event_with_id("e1", "r1")), LOST)
        second = FakeConnection(
            "not json", json.dumps({"type": "news"}), json.dumps({"type": "resume"})
        )

        watched = await run_watch(FakeConnect(first, second))

        assert watched.lines[1:] == ["not json", json.dumps({"type": "news"})]

    def test_the_url_keeps_its_own_query(self):
        assert resume_url("ws://m/v1?x=1", Filters([], ["n"], []), "e1") == (
            "ws://m/v1?x=1&node_filters=n&last_event_id=e1"
        )


@pytest.mark.anyio
class TestToken:
    async def test_the_token_is_sent_as_a_bearer_header_on_every_connect(self):
        seen = []

        def connect(url, **options):
            seen.append(options)
            return FakeConnection(FILTER_OK, json.dumps(event()))

        with anyio.fail_after(5), pytest.raises(EndOfScript):
            await watch(URL, FILTERS, out=io.StringIO(), connect=connect, token="t")

        assert seen == [{"additional_headers": {"Authorization": "Bearer t"}}]


@pytest.mark.anyio
class TestFatalErrors:
    async def test_an_invalid_uri_ends_the_watch_without_retrying(self):
        sleeps = RecordedSleeps()

        with anyio.fail_after(5), pytest.raises(click.ClickException) as raised:
            await watch(
                "http://manager:8000/v1/events/openstack", FILTERS, sleep=sleeps
            )

        assert raised.value.message == (
            "cannot watch: http://manager:8000/v1/events/openstack isn't a valid "
            "URI: scheme isn't ws or wss"
        )
        assert sleeps == []

    async def test_a_rejected_handshake_ends_the_watch_without_retrying(self):
        not_found = InvalidStatus(Response(404, "Not Found", Headers()))
        connect = FakeConnect(not_found, FakeConnection(FILTER_OK))

        watched = await run_watch(
            connect,
            raises=click.ClickException,
            match=f"^cannot watch: {URL}: server rejected WebSocket connection: "
            "HTTP 404$",
        )

        assert watched.sleeps == []
        assert connect.urls == [URL]


class TestWatchForever:
    def test_runs_the_watch_in_its_own_event_loop(self):
        out = io.StringIO()
        connect = FakeConnect(FakeConnection(FILTER_OK, json.dumps(event())))

        with pytest.raises(EndOfScript):
            watch_forever(URL, FILTERS, False, out, connect=connect)

        assert out.getvalue() == line() + "\n"

    def test_passes_json_mode_and_backoff_on(self):
        out = io.StringIO()
        connect = FakeConnect(REFUSED, FakeConnection(FILTER_OK, json.dumps(HEARTBEAT)))

        with pytest.raises(EndOfScript):
            watch_forever(
                URL,
                FILTERS,
                as_json=True,
                out=out,
                connect=connect,
                initial_backoff=0.001,
                max_backoff=0.001,
            )

        assert out.getvalue() == json.dumps(HEARTBEAT) + "\n"

    def test_an_interrupt_propagates(self):
        connect = FakeConnect(FakeConnection(FILTER_OK, KeyboardInterrupt()))

        with pytest.raises(KeyboardInterrupt):
            watch_forever(URL, FILTERS, out=io.StringIO(), connect=connect)


class TestWatchCommand:
    @pytest.fixture
    def watch_forever(self, mocker):
        return mocker.patch("osism.watch.watch_forever")

    def test_options_become_filters_url_and_json_mode(self, watch_forever):
        args = ["--event", "a", "--event", "b", "--node", "n", "--service", "s"]
        args += ["--url", "ws://x", "--json", "--token", "t"]

        result = CliRunner().invoke(main, ["events", "watch", *args])

        assert result.exit_code == 0, result.output
        watch_forever.assert_called_once_with(
            "ws://x", Filters(["a", "b"], ["n"], ["s"]), as_json=True, token="t"
        )

    def test_without_options_it_watches_everything_at_events_url(
        self, watch_forever, monkeypatch
    ):
        monkeypatch.setenv("EVENTS_URL", "ws://elsewhere:1/v1/events/openstack")
        monkeypatch.delenv("EVENTS_READ_TOKEN", raising=False)

        result = CliRunner().invoke(main, ["events", "watch"])

        assert result.exit_code == 0, result.output
        watch_forever.assert_called_once_with(
            "ws://elsewhere:1/v1/events/openstack",
            Filters([], [], []),
            as_json=False,
            token=None,
        )

    def test_the_read_token_comes_from_the_environment(
        self, watch_forever, monkeypatch
    ):
        monkeypatch.setenv("EVENTS_READ_TOKEN", "from-env")

        result = CliRunner().invoke(main, ["events", "watch"])

        assert result.exit_code == 0, result.output
        assert watch_forever.call_args.kwargs["token"] == "from-env"
        assert (
            "from-env"
            not in CliRunner().invoke(main, ["events", "watch", "--help"]).output
        )

    def test_an_interrupt_ends_the_command_quietly(self, watch_forever):
        watch_forever.side_effect = KeyboardInterrupt

        result = CliRunner().invoke(main, ["events", "watch"])

        assert (result.exit_code, result.output) == (0, "")

    def test_a_rejected_subscription_exits_with_the_message(self, watch_forever):
        watch_forever.side_effect = click.ClickException(
            "the server rejected the filters: frame is too large"
        )

        result = CliRunner().invoke(main, ["events", "watch"])

        assert result.exit_code == 1
        assert result.output == (
            "Error: the server rejected the filters: frame is too large\n"
        )
