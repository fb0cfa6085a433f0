"""Writing the frames of the events of one turn of the loop in one pass.

The bridge reads what Redis has for it once per EVENT_BATCH_INTERVAL and
fans the events out one after the other: each is matched once per group of
clients with the same filters (see filter_groups) and serialised once. If
each were then written to each client, a client would cost a call per
event. Here the frames are only staged, per group, and written at the end
of the loop's turn: every client of a group gets the group's frames in one
write of bytes made once for the group (see ``FrameWriter.write_frames_now``).

A group is its list of members as it was when the group was first staged:
the registry makes new lists whenever a client connects, leaves or changes
its filters, so a client that connects meanwhile gets only what is staged
after it connected, and a client's frames keep their order (the groups are
written in the order they were first staged, and a client is in one group
of each grouping).
"""

import asyncio
import logging
from collections import Counter
from typing import Dict, List, Tuple

from osism.services.client_sending import ClientSending
from osism.services.frame_writer import FrameBatch
from osism.services.websocket_connection import WebSocketConnection

logger = logging.getLogger("osism.websocket")

Members = List[WebSocketConnection]


class FanOutPass:
    def __init__(self, sending: ClientSending, stats: "Counter[str]") -> None:
        self.sending = sending
        self.stats = stats
        # id(members) -> (members, frames): the members list is kept, so
        # its id is not reused while it is staged.
        self._staged: Dict[int, Tuple[Members, List[str]]] = {}
        self._pending = 0

    @property
    def pending(self) -> int:
        """Frames staged and not written, counted once per client."""
        return self._pending

    def stage(self, members: Members, frame: str) -> None:
        """Send ``frame`` to every client of ``members`` at the end of this
        turn of the loop."""
        staged = self._staged.get(id(members))
        if staged is None:
            if not self._staged:
                asyncio.get_running_loop().call_soon(self.write)
            self._staged[id(members)] = (members, [frame])
        else:
            staged[1].append(frame)
        self._pending += len(members)

    def write(self) -> None:
        """Write everything staged, group after group."""
        staged, self._staged = self._staged, {}
        self._pending = 0
        deliver_batch = self.sending.deliver_batch
        sent = 0
        for members, frames in staged.values():
            batch = FrameBatch(frames)
            for connection in members:
                try:
                    sent += deliver_batch(connection, batch)
                except Exception as e:
                    # One client's failure is its own: the others still get
                    # the batch.
                    logger.error(
                        "Error writing to WebSocket client %s: %r", connection.label, e
                    )
        self.stats["broadcast"] += sent
