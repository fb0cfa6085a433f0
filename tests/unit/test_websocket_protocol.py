"""Unit tests of osism.websocket_protocol, driven through a real handshake.

The protocol object gets a recording transport instead of a socket; a
sans-I/O websockets client makes the upgrade request and decodes what the
server wrote.
"""

import asyncio
import socket
import struct
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

import anyio
import pytest
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from osism.connection_waits import ReceiveQueue, WritableFlag
from osism.services.frame_writer import DIRECT_WRITE, FrameBatch, frame_writer_of
from osism.websocket_protocol import (
    BatchingWebSocketProtocol,
    TextFrames,
    websocket_protocol,
)
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.anyio


class RecordingSocket:
    """What the protocol may ask of the transport's socket."""

    def __init__(self) -> None:
        self.options: Dict[Tuple[int, int], bytes] = {}

    def getsockname(self) -> Tuple[str, int]:
        return ("127.0.0.1", 8000)

    def getpeername(self) -> Tuple[str, int]:
        return ("127.0.0.1", 50000)

    def setsockopt(self, level: int, name: int, value: bytes) -> None:
        self.options[(level, name)] = value


class RecordingTransport(asyncio.Transport):
    """Keeps every write; knows whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: List[bytes] = []
        self.closing = False
        self.aborted = False
        self.reading = True
        self.socket: Optional[RecordingSocket] = RecordingSocket()

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.socket}.get(name, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class ScriptedApp:
    """An ASGI app that accepts, then sends whatever lists the test hands it.

    Each list is sent without yielding to the loop in between, as a client's
    sender task sends a batch; a callable in a list is called in its turn.
    """

    def __init__(self) -> None:
        # None ends the app.
        self.batches: "asyncio.Queue[Optional[List[Any]]]" = asyncio.Queue()
        self.errors: List[BaseException] = []
        self.sent = 0
        self.scope: Optional[Dict[str, Any]] = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            batch = await self.batches.get()
            if batch is None:
                return
            try:
                for message in batch:
                    if callable(message):
                        message()
                        continue
                    await send(message)
                    self.sent += 1
            except ClientDisconnected as e:
                self.errors.append(e)
                return


class Connection:
    """A BatchingWebSocketProtocol after its handshake, and its client side."""

    def __init__(
        self, protocol: BatchingWebSocketProtocol, app: ScriptedApp, deflate: bool
    ) -> None:
        self.protocol = protocol
        self.app = app
        self.transport: RecordingTransport = protocol.transport  # type: ignore
        self.client = ClientProtocol(
            parse_uri("ws://testserver/"),
            extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
        )
        self.handshake_writes = 0
        self._fed = 0
        self._frames: List[Frame] = []

    def writes_after_handshake(self) -> List[bytes]:
        return self.transport.writes[self.handshake_writes :]

    def frames(self) -> List[Frame]:
        """The frames the server wrote after the handshake, decoded."""
        for data in self.transport.writes[self._fed :]:
            self.client.receive_data(data)
        self._fed = len(self.transport.writes)
        for event in self.client.events_received():
            if isinstance(event, Frame):
                self._frames.append(event)
            else:
                assert isinstance(event, Response) and event.status_code == 101
        return list(self._frames)

    def texts(self) -> List[str]:
        return [
            bytes(f.data).decode() for f in self.frames() if f.opcode is Opcode.TEXT
        ]


def text(value: str) -> Dict[str, Any]:
    return {"type": "websocket.send", "text": value}


CLOSE_1011 = {"type": "websocket.close", "code": 1011}
# A close timeout for tests, instead of uvicorn's 10 s.
CLOSE_TIMEOUT = 0.05


def answer_close(connection: "Connection") -> None:
    """The client reads the server's close and answers it."""
    connection.frames()
    for data in connection.client.data_to_send():
        connection.protocol.data_received(data)


def make_protocol(app, protocol_class=BatchingWebSocketProtocol, deflate=False):
    config = Config(
        app=app, ws=protocol_class, log_level="warning", ws_per_message_deflate=deflate
    )
    config.load()
    return protocol_class(
        config=config,
        server_state=ServerState(),
        app_state={},
        _loop=asyncio.get_running_loop(),
    )


@pytest.fixture
async def open_connection():
    """Opens connections (handshake done); closes them after the test."""
    opened: List[Connection] = []

    async def open_one(deflate: bool = False) -> Connection:
        app = ScriptedApp()
        protocol = make_protocol(app, deflate=deflate)
        protocol.connection_made(RecordingTransport())
        conn = Connection(protocol, app, deflate)
        opened.append(conn)
        conn.client.send_request(conn.client.connect())
        for data in conn.client.data_to_send():
            protocol.data_received(data)
        await wait_until(lambda: conn.transport.writes)
        conn.handshake_writes = len(conn.transport.writes)
        conn.frames()  # takes in the handshake response
        return conn

    yield open_one
    for conn in opened:
        conn.app.batches.put_nowait(None)
        if not conn.protocol.disconnected:
            conn.protocol.connection_lost(None)
        with anyio.fail_after(5):
            await asyncio.gather(*conn.protocol.tasks, return_exceptions=True)


@pytest.fixture
async def connection(open_connection):
    return await open_connection()


class TestDataFrames:
    async def test_frames_sent_together_leave_in_one_write_in_order(self, connection):
        connection.app.batches.put_nowait([text("a"), text("b"), text("c")])

        await wait_until(lambda: connection.writes_after_handshake())
        await wait_until(lambda: connection.app.sent == 3)

        assert len(connection.writes_after_handshake()) == 1
        assert connection.texts() == ["a", "b", "c"]

    async def test_a_lone_frame_is_written_without_waiting_for_more(self, connection):
        connection.app.batches.put_nowait([text("only")])

        await wait_until(lambda: connection.texts() == ["only"])

    async def test_each_batch_gets_its_own_write(self, connection):
        connection.app.batches.put_nowait([text("1")])
        await wait_until(lambda: connection.texts() == ["1"])
        connection.app.batches.put_nowait([text("2"), text("3")])

        await wait_until(lambda: connection.texts() == ["1", "2", "3"])
        assert len(connection.writes_after_handshake()) == 2

    async def test_binary_frames_are_batched_too(self, connection):
        connection.app.batches.put_nowait(
            [{"type": "websocket.send", "bytes": b"\x00\x01"}, text("t")]
        )

        await wait_until(lambda: len(connection.frames()) == 2)
        binary, txt = connection.frames()
        assert (binary.opcode, binary.data) == (Opcode.BINARY, b"\x00\x01")
        assert (txt.opcode, txt.data) == (Opcode.TEXT, b"t")
        assert len(connection.writes_after_handshake()) == 1


class TestTextFrames:
    def test_a_text_is_encoded_once(self):
        frames = TextFrames()
        text = "".join(["event", "1"])

        assert frames.encode(text) is frames.encode(text)

    def test_an_equal_text_of_another_event_is_encoded_anew(self):
        frames = TextFrames()
        first, second = "".join(["e", "1"]), "".join(["e", "1"])

        assert frames.encode(first) == frames.encode(second)
        assert frames.encode(first) is not frames.encode(second)

    def test_only_the_last_texts_are_kept(self):
        frames = TextFrames(size=2)
        a, b, c = "a" * 3, "b" * 3, "c" * 3
        first = frames.encode(a)
        frames.encode(b)
        frames.encode(c)

        assert frames.encode(c) is frames.encode(c)
        assert frames.encode(a) is not first

    def test_the_frame_is_an_unmasked_text_frame(self):
        assert TextFrames().encode("hé") == b"\x81\x03h\xc3\xa9"

    def test_the_frames_kept_are_bounded_by_bytes(self):
        # A text of 100 bytes and its frame of 102: 202 bytes each.
        frames = TextFrames(size=10, max_bytes=500)
        texts = [str(n) * 100 for n in range(4)]
        first = [frames.encode(text) for text in texts]

        assert frames.nbytes == 2 * 202
        # The newest two are kept (looked up first: a miss evicts).
        assert frames.encode(texts[3]) is first[3]
        assert frames.encode(texts[2]) is first[2]
        assert frames.encode(texts[0]) is not first[0]

    def test_a_frame_larger_than_the_bound_is_not_kept(self):
        frames = TextFrames(max_bytes=500)
        small, large = "s" * 10, "l" * 300
        kept = frames.encode(small)

        assert frames.encode(large) is not frames.encode(large)
        assert frames.encode(small) is kept
        assert frames.nbytes == 10 + 12

    def test_by_default_a_batch_of_events_of_8_kib_is_kept(self):
        frames = TextFrames()
        texts = [str(n % 10) * 8000 for n in range(256)]
        first = [frames.encode(text) for text in texts]

        assert all(frames.encode(text) is kept for text, kept in zip(texts, first))
        assert frames.encode("x" * 2_000_000) is not frames.encode("x" * 2_000_000)


class TestSharedTextFrames:
    async def test_clients_that_get_the_same_text_get_the_same_frame(
        self, open_connection
    ):
        first, second = await open_connection(), await open_connection()
        text = "".join(["event", "-7"])
        for conn in (first, second):
            conn.app.batches.put_nowait([{"type": "websocket.send", "text": text}])

        for conn in (first, second):
            await wait_until(lambda: conn.texts() == ["event-7"])
        assert first.writes_after_handshake() == second.writes_after_handshake()

    async def test_with_per_message_deflate_each_client_compresses_its_own(
        self, open_connection
    ):
        conn = await open_connection(deflate=True)
        text = "x" * 1000
        conn.app.batches.put_nowait([{"type": "websocket.send", "text": text}] * 2)

        await wait_until(lambda: conn.texts() == [text, text])
        # Compressed: far smaller than the two texts.
        assert len(b"".join(conn.writes_after_handshake())) < 200


class TestOrderWithUvicornsOwnWrites:
    async def test_a_close_goes_out_behind_the_frames_still_waiting(self, connection):
        connection.app.batches.put_nowait(
            [text("a"), text("b"), {"type": "websocket.close", "code": 1011}]
        )

        await wait_until(lambda: connection.app.sent == 3)
        frames = connection.frames()
        assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.TEXT, Opcode.CLOSE]
        assert Close.parse(frames[-1].data).code == 1011

    async def test_a_pong_goes_out_behind_the_frames_still_waiting(self, connection):
        def ping() -> None:
            connection.client.send_ping(b"p")
            for data in connection.client.data_to_send():
                connection.protocol.data_received(data)

        # The ping arrives in the loop turn in which a and b were sent.
        connection.app.batches.put_nowait([text("a"), text("b"), ping])

        await wait_until(lambda: len(connection.frames()) == 3)
        assert [f.opcode for f in connection.frames()] == [
            Opcode.TEXT,
            Opcode.TEXT,
            Opcode.PONG,
        ]


class TestBackPressureAndLoss:
    async def test_a_send_waits_while_the_transport_is_paused(self, connection):
        connection.protocol.pause_writing()
        connection.app.batches.put_nowait([text("held")])

        with anyio.move_on_after(0.2):
            await wait_until(lambda: connection.app.sent == 1)
        assert connection.app.sent == 0
        assert connection.texts() == []

        connection.protocol.resume_writing()
        await wait_until(lambda: connection.texts() == ["held"])

    async def test_frames_waiting_when_the_connection_is_lost_are_not_written(
        self, connection
    ):
        lost = connection.protocol.connection_lost
        # Lost in the same loop turn, before the write.
        connection.app.batches.put_nowait([text("a"), text("b"), lambda: lost(None)])

        await wait_until(lambda: connection.app.sent == 2)
        await wait_until(lambda: not connection.protocol.flush_pending)
        assert connection.writes_after_handshake() == []

    async def test_a_send_after_the_connection_is_lost_raises(self, connection):
        connection.protocol.connection_lost(None)
        connection.app.batches.put_nowait([text("late")])

        await wait_until(lambda: connection.app.errors)
        assert isinstance(connection.app.errors[0], ClientDisconnected)
        assert connection.writes_after_handshake() == []

    async def test_a_send_after_the_client_closed_raises(self, connection):
        connection.client.send_close(1000)
        for data in connection.client.data_to_send():
            connection.protocol.data_received(data)
        connection.app.batches.put_nowait([text("late")])

        await wait_until(lambda: connection.app.errors)
        assert isinstance(connection.app.errors[0], ClientDisconnected)
        assert Opcode.TEXT not in [f.opcode for f in connection.frames()]


class TestClosing:
    async def test_a_client_has_ten_seconds_to_answer_a_close_by_default(self):
        assert make_protocol(ScriptedApp()).close_timeout == 10.0

    async def test_the_close_timeout_comes_from_the_setting(self):
        protocol = make_protocol(ScriptedApp(), websocket_protocol(close_timeout=2.5))

        assert isinstance(protocol, BatchingWebSocketProtocol)
        assert protocol.close_timeout == 2.5

    async def test_a_close_while_writes_are_paused_is_queued_at_once(self, connection):
        connection.protocol.pause_writing()
        connection.app.batches.put_nowait([CLOSE_1011])

        await wait_until(lambda: connection.app.sent == 1)
        frames = connection.frames()
        assert [f.opcode for f in frames] == [Opcode.CLOSE]
        assert Close.parse(frames[0].data).code == 1011

    async def test_the_app_learns_at_once_that_the_client_is_gone(self, connection):
        connection.protocol.pause_writing()
        connection.app.batches.put_nowait([CLOSE_1011])

        with anyio.fail_after(5):
            message = await connection.protocol.receive()
        assert message == {"type": "websocket.disconnect", "code": 1011, "reason": ""}

    async def test_reading_resumes_to_hear_the_clients_answer(self, connection):
        connection.protocol.pause_writing()
        connection.protocol.read_paused = True
        connection.transport.pause_reading()
        connection.app.batches.put_nowait([CLOSE_1011])

        await wait_until(lambda: connection.app.sent == 1)
        assert connection.transport.reading
        assert not connection.protocol.read_paused

    @pytest.mark.parametrize("paused", [True, False], ids=["paused", "writable"])
    async def test_a_client_that_does_not_answer_the_close_is_cut_off(
        self, connection, paused
    ):
        connection.protocol.close_timeout = CLOSE_TIMEOUT
        connection.app.batches.put_nowait([text("a")])
        await wait_until(lambda: connection.texts() == ["a"])
        if paused:
            connection.protocol.pause_writing()
        connection.app.batches.put_nowait([CLOSE_1011])

        await wait_until(lambda: connection.transport.aborted)
        assert connection.texts() == ["a"]
        # With a reset, not a close that waits to deliver unread frames.
        assert connection.transport.socket is not None
        linger = connection.transport.socket.options[
            (socket.SOL_SOCKET, socket.SO_LINGER)
        ]
        assert struct.unpack("ii", linger) == (1, 0)

    async def test_a_transport_without_a_socket_is_cut_off_all_the_same(
        self, connection
    ):
        connection.protocol.close_timeout = CLOSE_TIMEOUT
        connection.transport.socket = None
        connection.app.batches.put_nowait([CLOSE_1011])

        await wait_until(lambda: connection.transport.aborted)

    async def test_a_client_that_answers_the_close_is_closed_not_cut_off(
        self, connection
    ):
        connection.protocol.close_timeout = CLOSE_TIMEOUT
        connection.protocol.pause_writing()
        connection.app.batches.put_nowait([CLOSE_1011])
        await wait_until(lambda: connection.app.sent == 1)

        answer_close(connection)

        assert connection.transport.closing
        assert connection.protocol.close_timer is None
        with anyio.move_on_after(CLOSE_TIMEOUT * 4):
            await wait_until(lambda: connection.transport.aborted)
        assert not connection.transport.aborted


class TestDirectWrites:
    """write_text_now: the frames the WebSocket manager writes without a task."""

    async def test_the_scope_offers_the_protocol_as_frame_writer(self, connection):
        await wait_until(lambda: connection.app.scope is not None)
        scope = connection.app.scope

        assert scope["extensions"][DIRECT_WRITE] == {"writer": connection.protocol}
        # uvicorn's own extension is still there.
        assert "websocket.http.response" in scope["extensions"]
        assert frame_writer_of(SimpleNamespace(scope=scope)) is connection.protocol

    async def test_frames_written_now_reach_the_client_in_one_write(self, connection):
        written = [connection.protocol.write_text_now(t) for t in ("a", "b", "c")]

        assert written == [True, True, True]
        # Held for the caller's flush.
        assert connection.writes_after_handshake() == []
        connection.protocol.flush()
        await wait_until(lambda: connection.texts() == ["a", "b", "c"])
        assert len(connection.writes_after_handshake()) == 1

    async def test_frames_written_now_keep_their_place_among_sent_frames(
        self, connection
    ):
        written: List[bool] = []
        connection.app.batches.put_nowait(
            [
                text("a"),
                lambda: written.append(connection.protocol.write_text_now("b")),
                text("c"),
            ]
        )

        await wait_until(lambda: connection.app.sent == 2)
        await wait_until(lambda: connection.texts() == ["a", "b", "c"])
        assert written == [True]
        assert len(connection.writes_after_handshake()) == 1

    async def test_a_sent_frame_goes_out_behind_the_frames_written_now(
        self, connection
    ):
        assert connection.protocol.write_text_now("a")
        connection.app.batches.put_nowait([text("b")])

        await wait_until(lambda: connection.texts() == ["a", "b"])

    async def test_the_same_text_is_the_same_frame_for_every_client(
        self, open_connection
    ):
        first, second = await open_connection(), await open_connection()
        event = "".join(["event", "-8"])

        assert first.protocol.write_text_now(event)
        assert second.protocol.write_text_now(event)

        for conn in (first, second):
            conn.protocol.flush()
            await wait_until(lambda: conn.texts() == ["event-8"])
        assert first.writes_after_handshake() == second.writes_after_handshake()

    async def test_nothing_is_written_while_writes_are_paused(self, connection):
        connection.protocol.pause_writing()

        assert connection.protocol.write_text_now("held") is False
        assert not connection.protocol.flush_pending
        # What the loop would write next turn: nothing.
        connection.protocol.flush()
        assert connection.writes_after_handshake() == []

        connection.protocol.resume_writing()
        assert connection.protocol.write_text_now("later") is True
        connection.protocol.flush()
        await wait_until(lambda: connection.texts() == ["later"])

    async def test_nothing_is_written_after_the_connection_is_lost(self, connection):
        connection.protocol.connection_lost(None)

        assert connection.protocol.write_text_now("late") is False
        assert not connection.protocol.flush_pending
        assert connection.writes_after_handshake() == []

    async def test_nothing_is_written_after_the_server_closed(self, connection):
        connection.app.batches.put_nowait([CLOSE_1011])
        await wait_until(lambda: connection.app.sent == 1)

        assert connection.protocol.write_text_now("late") is False
        assert [f.opcode for f in connection.frames()] == [Opcode.CLOSE]

    async def test_nothing_is_written_after_the_client_closed(self, connection):
        connection.client.send_close(1000)
        for data in connection.client.data_to_send():
            connection.protocol.data_received(data)

        assert connection.protocol.write_text_now("late") is False
        assert Opcode.TEXT not in [f.opcode for f in connection.frames()]

    async def test_a_compressed_connection_is_not_written_to_directly(
        self, open_connection
    ):
        conn = await open_connection(deflate=True)

        assert conn.protocol.write_text_now("x" * 1000) is False
        assert not conn.protocol.flush_pending
        # The app's sends still go out, compressed.
        conn.app.batches.put_nowait([text("y" * 1000)])
        await wait_until(lambda: conn.texts() == ["y" * 1000])

    async def test_nothing_is_written_before_the_handshake(self):
        protocol = make_protocol(ScriptedApp())
        protocol.connection_made(RecordingTransport())
        try:
            assert protocol.write_text_now("early") is False
            assert protocol.transport.writes == []
        finally:
            protocol.connection_lost(None)

    async def test_a_rejected_upgrade_offers_no_writer_and_runs_no_app(self):
        app = ScriptedApp()
        protocol = make_protocol(app)
        transport = RecordingTransport()
        protocol.connection_made(transport)
        client = ClientProtocol(parse_uri("ws://testserver/"))
        request = client.connect()
        del request.headers["Sec-WebSocket-Key"]
        client.send_request(request)
        try:
            for data in client.data_to_send():
                protocol.data_received(data)

            assert transport.writes[0].startswith(b"HTTP/1.1 400 ")
            assert transport.closing
            assert protocol.write_text_now("x") is False
            assert protocol.tasks == set()
            assert app.scope is None
        finally:
            protocol.connection_lost(None)


class TestBatchWrites:
    """write_frames_now: a pass of the fan-out writes a group's frames to
    each of its clients at once."""

    async def test_a_batch_goes_out_now_in_one_write(self, connection):
        batch = FrameBatch(["a", "b", "c"])

        assert connection.protocol.write_frames_now(batch) is True

        assert len(connection.writes_after_handshake()) == 1
        assert connection.texts() == ["a", "b", "c"]
        assert not connection.protocol.flush_pending

    async def test_the_batch_is_encoded_once_for_every_client(self, open_connection):
        first, second = await open_connection(), await open_connection()
        batch = FrameBatch(["event-1", "event-2"])

        assert first.protocol.write_frames_now(batch)
        wire = batch.wire
        assert second.protocol.write_frames_now(batch)

        assert batch.wire is wire
        assert first.writes_after_handshake() == second.writes_after_handshake()
        assert second.texts() == ["event-1", "event-2"]

    async def test_frames_held_for_a_flush_go_out_ahead_in_the_same_write(
        self, connection
    ):
        assert connection.protocol.write_text_now("first")

        assert connection.protocol.write_frames_now(FrameBatch(["second"]))

        assert len(connection.writes_after_handshake()) == 1
        assert connection.texts() == ["first", "second"]

    async def test_a_paused_connection_takes_no_batch(self, connection):
        connection.protocol.pause_writing()

        assert connection.protocol.write_frames_now(FrameBatch(["held"])) is False
        assert connection.writes_after_handshake() == []

    async def test_a_compressed_connection_takes_no_batch(self, open_connection):
        conn = await open_connection(deflate=True)

        assert conn.protocol.write_frames_now(FrameBatch(["x" * 1000])) is False
        assert conn.writes_after_handshake() == []

    async def test_a_closing_transport_takes_the_batch_and_writes_nothing(
        self, connection
    ):
        """As a flush to a closing transport: the client is going away."""
        connection.transport.closing = True

        assert connection.protocol.write_frames_now(FrameBatch(["gone"])) is True
        assert connection.writes_after_handshake() == []


class TestHandshakeMemory:
    async def test_the_handshake_is_let_go_once_accepted(self, connection):
        await wait_until(lambda: connection.app.scope is not None)

        assert "request" not in vars(connection.protocol)
        assert "response" not in vars(connection.protocol)
        # The scope keeps what the app needs of the request.
        assert connection.app.scope["path"] == "/"

    async def test_the_request_websockets_keeps_is_emptied(self, connection):
        """websockets' parser holds the request for the connection's life (a
        local of its generator); its headers go once the client is accepted."""
        await wait_until(lambda: connection.app.scope is not None)

        kept = connection.protocol.conn.parser.gi_frame.f_locals["request"]
        assert len(kept.headers) == 0
        assert b"sec-websocket-key" in {
            k.lower() for k, _ in connection.app.scope["headers"]
        }

    async def test_the_queue_and_the_flag_are_the_lighter_ones(self, connection):
        assert isinstance(connection.protocol.queue, ReceiveQueue)
        assert isinstance(connection.protocol.writable, WritableFlag)

    async def test_a_denial_response_goes_out_whole(self):
        """The handshake is kept while the app answers with plain HTTP: the
        response is not complete until its body is."""

        async def deny(scope: Any, receive: Any, send: Any) -> None:
            assert (await receive())["type"] == "websocket.connect"
            await send(
                {"type": "websocket.http.response.start", "status": 403, "headers": []}
            )
            await send({"type": "websocket.http.response.body", "body": b"no"})

        protocol = make_protocol(deny)
        transport = RecordingTransport()
        protocol.connection_made(transport)
        client = ClientProtocol(parse_uri("ws://testserver/"))
        client.send_request(client.connect())
        for data in client.data_to_send():
            protocol.data_received(data)

        await wait_until(lambda: transport.writes)
        with anyio.fail_after(5):
            await asyncio.gather(*protocol.tasks, return_exceptions=True)
        [written] = transport.writes
        assert written.startswith(b"HTTP/1.1 403 ")
        assert written.endswith(b"\r\n\r\nno")
        assert transport.closing
        assert protocol.write_text_now("x") is False
        if not protocol.disconnected:
            protocol.connection_lost(None)
