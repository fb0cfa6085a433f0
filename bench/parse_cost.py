"""CPU per received frame of the benchmark's receiver parser, next to the
`websockets` library's own parser, on the same bytes (no sockets involved).

    .venv/bin/python bench/parse_cost.py [--frames 20000]

Why the benchmark has a hand-written client: on two shared cores the
receiving side must cost the server as little CPU as possible. This prints
microseconds per frame for (1) bench/ws_protocol.FrameStream, which also
pulls out the sequence number and send time, (2) websockets' sans-I/O
ClientProtocol parsing only, and (3) the same plus json.loads of each frame,
which a library-based receiver would need to read the sequence number.
"""

import argparse
import json
import socket
import struct
import time
import uuid
from typing import Callable, List

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri
from ws_protocol import EVENT_TYPE, FrameStream, Handshake, ReceiveStats

CHUNK = 1 << 18


def server_frames(count: int) -> bytes:
    """Unmasked text frames as the API sends them for the benchmark's events."""
    frames: List[bytes] = []
    node = {"name": "node-1", "uuid": str(uuid.uuid4())}
    for seq in range(count):
        event = {
            "id": str(uuid.uuid4()),
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "event_type": EVENT_TYPE,
            "source": "openstack",
            "node_name": node["name"],
            "data": {
                "ironic_object.data": node,
                "bench_seq": seq,
                "bench_sent_ns": time.monotonic_ns(),
                "service_type": "baremetal",
                "resource_id": node["uuid"],
            },
        }
        payload = json.dumps(event).encode()
        frames.append(struct.pack("!BBH", 0x81, 126, len(payload)) + payload)
    return b"".join(frames)


def per_frame_us(parse: Callable[[bytes], int], data: bytes, count: int) -> float:
    start = time.process_time()
    parsed = sum(parse(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK))
    elapsed = time.process_time() - start
    if parsed != count:
        raise RuntimeError(f"parsed {parsed} frames, expected {count}")
    return elapsed / count * 1e6


def frame_stream(count: int) -> Callable[[bytes], int]:
    sock, _ = socket.socketpair()
    stream = FrameStream(sock, Handshake(b"", False, False), ReceiveStats(count))

    def parse(chunk: bytes) -> int:
        before = stream.stats.received
        stream.feed(chunk, time.monotonic_ns())
        return stream.stats.received - before

    return parse


def library(decode_json: bool) -> Callable[[bytes], int]:
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN)

    def parse(chunk: bytes) -> int:
        protocol.receive_data(chunk)
        frames = protocol.events_received()
        if decode_json:
            for frame in frames:
                assert isinstance(frame, Frame)
                json.loads(bytes(frame.data))["data"]["bench_seq"]
        return len(frames)

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000)
    count = parser.parse_args().frames
    data = server_frames(count)
    print(f"{count:,} frames of {len(data) // count} bytes, CPU us per frame:")
    for name, parse in (
        ("bench/ws_protocol FrameStream (parse + seq + time)", frame_stream(count)),
        ("websockets ClientProtocol (parse only)", library(False)),
        ("websockets ClientProtocol + json.loads", library(True)),
    ):
        print(f"  {per_frame_us(parse, data, count):6.2f}  {name}")


if __name__ == "__main__":
    main()
