"""Writing a client's frames straight to its connection, without a task.

The events of a turn of the loop reach every matching client in one pass
(see ``fan_out_pass``): each client's connection is handed its group's
frames as one batch, with no task woken per client. That takes a server
whose WebSocket protocol offers it: osism's own
(``osism.websocket_protocol``, which ``osism service api`` runs) puts
itself into the ASGI scope's extensions under :data:`DIRECT_WRITE`. Under
any other server, or for a client the protocol cannot take a frame from
right now (its transport is paused because it does not read, the
connection is closing, frames are compressed per connection), the frames
go through the client's outbox and sender task instead (see
``client_outbox``).
"""

from typing import Any, List, Optional, Protocol

# The ASGI scope extension under which the server offers a FrameWriter:
# scope["extensions"][DIRECT_WRITE] == {"writer": <FrameWriter>}.
DIRECT_WRITE = "osism.direct_write"


class FrameBatch:
    """Text frames that go to several clients together, in order.

    ``wire`` is the server's: the frames as bytes on the wire, made by the
    first connection that writes them and taken as they are by the others
    (None until then; a connection that compresses does not use it).
    """

    __slots__ = ("texts", "wire")

    def __init__(self, texts: List[str]) -> None:
        self.texts = texts
        self.wire: Optional[bytes] = None


class FrameWriter(Protocol):
    def write_frames_now(self, batch: FrameBatch) -> bool:
        """Write the batch's frames to the connection now, behind
        everything sent before; False (and nothing written) when the
        connection cannot take them at once."""

    def write_text_now(self, text: str) -> bool:
        """Queue ``text`` as a text frame on the connection, in order with
        everything sent before, without waiting, until :meth:`flush`; False
        (and nothing queued) when the connection cannot take it at once."""

    def flush(self) -> None:
        """Write what is queued, in one write."""


def frame_writer_of(websocket: Any) -> Optional[FrameWriter]:
    """The FrameWriter the server offers for ``websocket``'s connection, if any."""
    scope = getattr(websocket, "scope", None)
    if not isinstance(scope, dict):
        return None
    offer = scope.get("extensions", {}).get(DIRECT_WRITE)
    if not isinstance(offer, dict):
        return None
    writer: Optional[FrameWriter] = offer.get("writer")
    return writer
