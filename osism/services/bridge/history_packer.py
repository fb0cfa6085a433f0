"""An event's XADD in the same write as its PUBLISH.

redis-py turns each command into bytes with its connections' command packer
(the ``command_packer`` argument of a connection). The bridge gives the
connections of its client a :class:`HistoryPacker`. The history stages an
event's XADD (:meth:`HistoryPacker.ahead_of`), then calls ``client.publish``
as the seed's contract has it; packing that PUBLISH, the packer puts
``CLIENT REPLY SKIP`` and the XADD in front of it. All three go to Redis in
one write on one connection: Redis runs the XADD strictly before the
PUBLISH, answers only the PUBLISH, and wakes once per event. Sent apart, the
XADD cost 10-25 % of a burst's publishing rate (``bench/``).
"""

import threading
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

# redis-py's cut-off between packing a command's pieces together or apart.
BUFFER_CUTOFF = 6000


def default_packer() -> Any:
    """The packer redis-py's connections use by themselves."""
    from redis.connection import Encoder, HiredisRespSerializer, PythonRespSerializer
    from redis.utils import HIREDIS_AVAILABLE

    if HIREDIS_AVAILABLE:
        return HiredisRespSerializer()
    encoder = Encoder(
        encoding="utf-8", encoding_errors="strict", decode_responses=False
    )
    return PythonRespSerializer(BUFFER_CUTOFF, encoder.encode)


class Staged:
    """An XADD waiting for the PUBLISH of ``message`` on ``channel``."""

    __slots__ = ("channel", "message", "prefix", "sent")

    def __init__(self, channel: str, message: str, prefix: bytes) -> None:
        self.channel = channel
        self.message = message
        self.prefix = prefix
        self.sent = False


class HistoryPacker:
    """Packs as redis-py does, and puts a staged XADD before its PUBLISH.

    A staged XADD goes only with the PUBLISH of the very same channel and
    message objects, packed on the thread that staged it: a command another
    thread sends meanwhile on the same pool goes out as it is.
    """

    def __init__(self, base: Any = None) -> None:
        self.base = default_packer() if base is None else base
        self._staged = threading.local()

    @contextmanager
    def ahead_of(self, channel: str, message: str, *xadd: Any) -> Iterator["Staged"]:
        """While in this block, the PUBLISH of ``message`` on ``channel`` is
        sent after ``XADD *xadd``, whose answer Redis skips; the block gets
        the :class:`Staged`, which says whether it went."""
        prefix = self._joined(
            self.base.pack("CLIENT", "REPLY", "SKIP") + self.base.pack("XADD", *xadd)
        )
        staged = Staged(channel, message, prefix)
        self._staged.publish = staged
        try:
            yield staged
        finally:
            self._staged.publish = None

    def pack(self, *args: Any) -> List[bytes]:
        packed: List[bytes] = self.base.pack(*args)
        staged: Optional[Staged] = getattr(self._staged, "publish", None)
        if (
            staged is not None
            and len(args) == 3
            and args[0] == "PUBLISH"
            and args[1] is staged.channel
            and args[2] is staged.message
        ):
            self._staged.publish = None
            staged.sent = True
            return [staged.prefix + self._joined(packed)]
        return packed

    @staticmethod
    def _joined(pieces: List[bytes]) -> bytes:
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
