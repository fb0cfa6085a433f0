"""Loopback ports: one nobody listens on, and one that refuses connections."""

import contextlib
import socket
from typing import Iterator

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (a server started on
    it may still find it taken: the servers' starters retry on another)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port on which connections are refused, for as long as the
    context lasts: a socket bound to it but not listening holds it, so no
    other process can start listening there in the meantime."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])
