"""The publishing side's parts wired together as the bridge wires them, on
the fake Redis, with a clock and a shutdown event that take no time."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

import pytest

from osism.services.bridge.backlog import Backlog
from osism.services.bridge.history import RedisHistory
from osism.services.bridge.link import RedisLink
from osism.services.bridge.publisher import Publisher
from osism.services.bridge.receivers import Receivers
from osism.services.bridge.reconnector import Reconnector
from osism.services.event_buffer import EventBuffer
from osism.services.retry import Backoff
from tests.unit.services.bridge_doubles import FakeClock, FakeShutdown

CHANNEL = "osism:events"
ORIGIN = "0123456789abcdef0123456789abcdef"


def event(number: int) -> Any:
    return {"event_type": f"compute.instance.update.{number}", "payload": {"n": number}}


@dataclass
class PublishingSide:
    link: RedisLink
    backlog: Backlog
    receivers: Receivers
    reconnector: Reconnector
    publisher: Publisher
    shutdown: FakeShutdown
    clock: FakeClock
    stats: "Counter[str]"
    local_queue: Any
    keeps_for_redis: bool = True
    connected: List[str] = field(default_factory=list)

    def contents(self) -> List[Any]:
        """What the backlog holds, head first."""
        return list(self.backlog.buffer.queue)


@pytest.fixture
def make_side(
    fake_redis, threads, bridge_logs, caplog
) -> Callable[..., PublishingSide]:
    """Makes the parts; what they logged while being made is cleared."""

    def make(
        buffer_size: int = 100,
        subscriber_wait: float = 10.0,
        stop_after: Optional[int] = None,
        connect: bool = True,
        history: Optional[RedisHistory] = None,
    ) -> PublishingSide:
        clock = FakeClock(1_700_000_000.0)
        shutdown = FakeShutdown(clock, stop_after)
        stats: "Counter[str]" = Counter()
        link = RedisLink("redis", 6379, 0, CHANNEL, 5.0, True, clock=clock)
        local_queue: Any = EventBuffer(buffer_size)
        backlog = Backlog(local_queue)
        receivers = Receivers(subscriber_wait, 6.0, stats, clock)
        side: Any = None

        def reconnect() -> None:
            link.connect(serving=False)

        reconnector = Reconnector(
            link,
            backlog,
            receivers,
            Backoff(1.0, 5.0),
            shutdown,
            stats,
            reconnect=reconnect,
            on_connected=lambda: side.connected.append("connected"),
            history=history,
        )
        publisher = Publisher(
            link,
            backlog,
            receivers,
            reconnector,
            stats,
            ORIGIN,
            reconnect=reconnect,
            keeps_for_redis=lambda: side.keeps_for_redis,
        )
        side = PublishingSide(
            link,
            backlog,
            receivers,
            reconnector,
            publisher,
            shutdown,
            clock,
            stats,
            local_queue,
        )
        if connect:
            link.connect(serving=False)
        caplog.clear()
        return side

    return make
