"""The benchmark's clients cut plain text frames out of the stream by
themselves (tests/harness/fast_clients.py): what they find must be what the
websockets protocol would find, wherever the chunks are split, and every
frame the protocol must see or answer still goes to it."""

import socket
from typing import Iterator, List, Tuple

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.harness.fast_clients import Client, Connection, Receiver
from tests.harness.numbered_events import ReceiveStats


def server_frame(frame: Frame) -> bytes:
    return frame.serialize(mask=False, extensions=[])


@pytest.fixture
def connection() -> Iterator[Tuple[Connection, socket.socket]]:
    """A client connection in the OPEN state over a socket pair; the other
    end is where the client's replies (pongs, the close) arrive."""
    ours, theirs = socket.socketpair()
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/events"), state=State.OPEN)
    client = Connection(ours, protocol)
    theirs.settimeout(5)
    yield client, theirs
    ours.close()
    theirs.close()


def texts(frames: List[Frame]) -> List[bytes]:
    return [bytes(f.data) for f in frames if f.opcode is Opcode.TEXT]


STREAM_TEXTS = [b"a", b"x" * 125, b"y" * 126, b"z" * 70_000, b'{"n": 1}']


def stream() -> bytes:
    return b"".join(server_frame(Frame(Opcode.TEXT, t)) for t in STREAM_TEXTS)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 127, 4096, 1 << 20])
def test_texts_come_whole_and_in_order_however_the_bytes_are_split(
    connection: Tuple[Connection, socket.socket], size: int
) -> None:
    client, _ = connection
    data = stream()
    found: List[Frame] = []
    for start in range(0, len(data), size):
        found += client.feed(data[start : start + size])
    assert texts(found) == STREAM_TEXTS


def test_a_ping_goes_to_the_protocol_which_answers_it(
    connection: Tuple[Connection, socket.socket],
) -> None:
    client, theirs = connection
    data = (
        server_frame(Frame(Opcode.TEXT, b"before"))
        + server_frame(Frame(Opcode.PING, b"are you there"))
        + server_frame(Frame(Opcode.TEXT, b"after"))
    )
    found = client.feed(data)
    assert [(f.opcode, bytes(f.data)) for f in found] == [
        (Opcode.TEXT, b"before"),
        (Opcode.PING, b"are you there"),
        (Opcode.TEXT, b"after"),
    ]
    reply = theirs.recv(1024)
    # A masked PONG (0x8A) of 13 bytes, and its payload unmasked.
    assert reply[:2] == bytes([0x8A, 0x80 | 13])
    key, payload = reply[2:6], reply[6:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(payload)) == b"are you there"


def test_a_fragmented_message_is_assembled_by_the_protocol(
    connection: Tuple[Connection, socket.socket],
) -> None:
    client, _ = connection
    data = (
        server_frame(Frame(Opcode.TEXT, b"one ", fin=False))
        + server_frame(Frame(Opcode.PING, b""))
        + server_frame(Frame(Opcode.CONT, b"two ", fin=False))
        + server_frame(Frame(Opcode.CONT, b"three"))
        + server_frame(Frame(Opcode.TEXT, b"alone"))
    )
    found: List[Frame] = []
    for start in range(0, len(data), 5):
        found += client.feed(data[start : start + 5])
    # The protocol hands over each fragment as a frame; the frames of the
    # message are all there, in order, and the next message stands alone.
    assert [bytes(f.data) for f in found if f.opcode is not Opcode.PING] == [
        b"one ",
        b"two ",
        b"three",
        b"alone",
    ]


def test_the_close_frame_ends_it_and_later_texts_are_not_counted(
    connection: Tuple[Connection, socket.socket],
) -> None:
    client, _ = connection
    data = (
        server_frame(Frame(Opcode.TEXT, b"last"))
        + server_frame(Frame(Opcode.CLOSE, Close(1001, "going away").serialize()))
        + server_frame(Frame(Opcode.TEXT, b"after the close"))
    )
    found = client.feed(data)
    assert texts(found) == [b"last"]
    assert client.close_code == 1001


def test_a_masked_frame_from_the_server_fails_the_connection(
    connection: Tuple[Connection, socket.socket],
) -> None:
    client, _ = connection
    masked = Frame(Opcode.TEXT, b"masked").serialize(mask=True, extensions=[])
    found = client.feed(masked + server_frame(Frame(Opcode.TEXT, b"more")))
    assert texts(found) == []
    assert client.feed(server_frame(Frame(Opcode.TEXT, b"even more"))) == []
    assert client.protocol.state is State.CLOSING
    assert client.protocol.close_sent is not None
    assert client.protocol.close_sent.code == 1002


def test_a_whole_text_inside_a_fragmented_message_is_the_protocols_to_refuse(
    connection: Tuple[Connection, socket.socket],
) -> None:
    client, _ = connection
    data = (
        server_frame(Frame(Opcode.TEXT, b"begun ", fin=False))
        + server_frame(Frame(Opcode.PING, b""))
        + server_frame(Frame(Opcode.TEXT, b"intruder"))
    )
    found = client.feed(data)
    assert b"intruder" not in texts(found)
    assert client.protocol.close_sent is not None
    assert client.protocol.close_sent.code == 1002


def numbered(seq: int) -> bytes:
    text = f'{{"data": {{"bench_seq": {seq}, "bench_sent_ns": {1000 + seq}}}}}'
    return server_frame(Frame(Opcode.TEXT, text.encode()))


def test_the_receiver_counts_every_clients_events_until_all_are_in() -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    clients = [
        Client(
            Connection(ours, ClientProtocol(parse_uri("ws://h/e"), state=State.OPEN)),
            ReceiveStats(3),
        )
        for ours, _ in pairs
    ]
    try:
        stream = numbered(0) + numbered(1) + numbered(2)
        for _, theirs in pairs:
            theirs.sendall(stream[:7])
            theirs.sendall(stream[7:])
        receiver = Receiver(clients, events=3, idle_timeout=1.0, deadline=5.0)

        receiver.run()

        assert receiver.ended_by == "complete"
        for client in clients:
            assert client.stats.received == 3
            assert list(client.stats.sent) == [1000, 1001, 1002]
            assert client.stats.duplicates == client.stats.out_of_order == 0
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_a_client_whose_server_hung_up_is_let_go() -> None:
    ours, theirs = socket.socketpair()
    client = Client(
        Connection(ours, ClientProtocol(parse_uri("ws://h/e"), state=State.OPEN)),
        ReceiveStats(3),
    )
    try:
        theirs.sendall(numbered(0))
        theirs.close()
        receiver = Receiver([client], events=3, idle_timeout=1.0, deadline=5.0)

        receiver.run()

        assert client.closed
        assert client.stats.received == 1
        assert receiver.ended_by == "complete"  # nothing left to wait for
    finally:
        ours.close()
