"""An in-memory stand-in for Redis, as far as the event bridge uses it.

Why not fakeredis: the bridge's outage handling is about failures (a
refused ping, a publish that breaks, a read that fails, a subscription lost
in a restart, a close that raises), and about how many subscribers a
publish reached. This fake makes each of those one line in a test
(:meth:`FakeRedis.go_down`, :meth:`FakeRedis.fail_next`,
:meth:`FakeRedis.add_subscribers`), needs no dependency, and lets a
synchronous test end a read loop when the channel runs dry
(:attr:`FakeRedis.when_idle`).

One :class:`FakeRedis` is the server; ``FakeRedis.client`` stands in for
``redis.Redis`` and makes clients connected to it.
"""

import json
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import hiredis
from redis.exceptions import ResponseError

REFUSED = ConnectionError("refused")

# What redis-py does without talking to the server: it works while Redis is
# down.
WITHOUT_SERVER = ("Redis", "pubsub", "close", "pubsub.close")

# Reads of an empty channel after which a loop that was not ended counts as
# runaway: the test has forgotten to end it.
IDLE_READS_LIMIT = 1000


class FakeRedis:
    def __init__(self) -> None:
        self.down_error: Optional[BaseException] = None
        # (channel, message) of every publish that Redis took.
        self.published: List[Tuple[str, str]] = []
        # Keyword arguments of every client made.
        self.made: List[Dict[str, Any]] = []
        self.clients: List["FakeClient"] = []
        self.pubsubs: List["FakePubSub"] = []
        self.failures: Dict[str, Deque[BaseException]] = {}
        # Subscribers of other processes, per channel.
        self.others: Dict[str, int] = {}
        # Called when a read finds nothing; a test ends its loop here.
        self.when_idle: Callable[[], None] = lambda: None
        # Called after each publish that Redis took.
        self.when_published: Callable[[], None] = lambda: None
        # A frozen Redis (SIGSTOP) answers nothing and fails nothing.
        self.frozen = False
        # How each XADD asked to trim: (key, MAXLEN, approximately "~").
        self.trims: List[Tuple[str, int, bool]] = []
        # Streams: key -> [(entry id, fields)], oldest first.
        self.streams: Dict[str, List[Tuple[str, Dict[str, str]]]] = {}
        self._next_entry = 0

    # The redis.Redis stand-in.
    def client(self, **kwargs: Any) -> "FakeClient":
        self._check("Redis")
        self.made.append(kwargs)
        client = FakeClient(self)
        self.clients.append(client)
        return client

    def go_down(self, error: BaseException = REFUSED) -> None:
        """Every command fails with ``error`` until :meth:`come_back`; the
        subscriptions are gone, as after a restart."""
        self.down_error = error
        for pubsub in self.pubsubs:
            pubsub.channels.clear()

    def come_back(self) -> None:
        self.down_error = None

    def restart(self) -> None:
        """Redis restarted while nobody was looking: the subscriptions are
        gone and each pub/sub's next read finds its connection closed."""
        for pubsub in self.pubsubs:
            pubsub.channels.clear()
            pubsub.broken = True

    def fail_next(self, command: str, *errors: BaseException) -> None:
        """The next calls of ``command`` (``ping``, ``publish``, ``pubsub_numsub``,
        ``close``, ``Redis``, ``xadd``, ``client``, ``pubsub.subscribe``,
        ``pubsub.get_message``, ``pubsub.close``) raise ``errors``, one each."""
        self.failures.setdefault(command, deque()).extend(errors)

    def add_subscribers(self, channel: str, count: int) -> None:
        """Subscribers of other processes that receive what is published."""
        self.others[channel] = self.others.get(channel, 0) + count

    def subscribers(self, channel: str) -> int:
        own = sum(1 for p in self.pubsubs if channel in p.channels and not p.closed)
        return own + self.others.get(channel, 0)

    def messages(self, channel: str) -> List[Any]:
        """The decoded messages published on ``channel``."""
        return [json.loads(m) for c, m in self.published if c == channel]

    def _check(self, command: str) -> None:
        pending = self.failures.get(command)
        if pending:
            raise pending.popleft()
        if self.down_error is not None and command not in WITHOUT_SERVER:
            raise self.down_error
        if (
            self.frozen
            and not command.startswith("pubsub")
            and command not in WITHOUT_SERVER
        ):
            # What redis-py raises once REDIS_SOCKET_TIMEOUT has passed.
            raise TimeoutError("Timeout reading from socket")

    def _xadd(
        self, key: str, fields: Dict[str, str], maxlen: int, approximate: bool
    ) -> str:
        self._check("xadd")
        self.trims.append((key, maxlen, approximate))
        self._next_entry += 1
        entry_id = f"1700000000000-{self._next_entry}"
        stream = self.streams.setdefault(key, [])
        stream.append((entry_id, dict(fields)))
        del stream[: max(0, len(stream) - maxlen)]
        return entry_id

    def _xrevrange(
        self, key: str, end: str, start: str, count: int
    ) -> List[Tuple[str, Dict[str, str]]]:
        """Newest first, up to ``end`` ("+", an id, or "(id" exclusive);
        ``start`` is always "-" here."""
        self._check("xrevrange")
        assert start == "-"
        entries = list(reversed(self.streams.get(key, [])))
        if end != "+":
            exclusive = end.startswith("(")
            bound = _seq(end.lstrip("("))
            entries = [
                e
                for e in entries
                if _seq(e[0]) < bound or (not exclusive and _seq(e[0]) == bound)
            ]
        return entries[:count]

    def stream_events(self, key: str) -> List[Any]:
        """The decoded events of stream ``key``, oldest first."""
        return [json.loads(f["event"]) for _, f in self.streams.get(key, [])]

    def _run(self, packed: List[bytes]) -> Any:
        """Run the commands of what a client wrote, as Redis does; the answer
        to the last. Only what the history writes is spoken here."""
        reader = hiredis.Reader(encoding="utf-8")
        for piece in packed:
            reader.feed(piece)
        answer: Any = None
        skip = False
        while (command := reader.gets()) is not False:
            name, *args = command
            if name == "CLIENT":
                assert args == ["REPLY", "SKIP"]
                skip = True
                continue
            try:
                if name == "XADD":
                    key, _, approximately, maxlen, _, field, value = args
                    result: Any = self._xadd(
                        key, {field: value}, int(maxlen), approximately == "~"
                    )
                else:
                    assert name == "PUBLISH"
                    result = self._publish(*args)
            except ResponseError:
                if not skip:
                    raise
            else:
                if not skip:
                    answer = result
            skip = False
        return answer

    def _publish(self, channel: str, message: str) -> int:
        self._check("publish")
        self.published.append((channel, message))
        for pubsub in self.pubsubs:
            if channel in pubsub.channels and not pubsub.closed:
                pubsub.inbox.append(
                    {
                        "type": "message",
                        "pattern": None,
                        "channel": channel,
                        "data": message,
                    }
                )
        self.when_published()
        return self.subscribers(channel)


def _seq(entry_id: str) -> int:
    return int(entry_id.split("-")[1])


class FakeConnectionPool:
    def __init__(self) -> None:
        self.connection_kwargs: Dict[str, Any] = {"socket_timeout": None}
        # How often the idle connections were closed.
        self.disconnected = 0

    def disconnect(self, inuse_connections: bool = True) -> None:
        assert not inuse_connections, "the subscriber's connection is in use"
        self.disconnected += 1


class FakeClient:
    def __init__(self, server: FakeRedis) -> None:
        self.server = server
        self.connection_pool = FakeConnectionPool()
        self.retry: Any = None
        self.closed = False

    def set_retry(self, retry: Any) -> None:
        self.retry = retry

    def ping(self) -> bool:
        self.server._check("ping")
        return True

    def execute_command(self, *args: Any) -> Any:
        assert args == ("CLIENT", "REPLY", "ON"), args
        self.server._check("client")
        return "OK"

    def publish(self, channel: str, message: str) -> int:
        packer = self.connection_pool.connection_kwargs.get("command_packer")
        if packer is None:
            return self.server._publish(channel, message)
        return self.server._run(packer.pack("PUBLISH", channel, message))

    def xadd(
        self,
        key: str,
        fields: Dict[str, str],
        maxlen: int = 1_000_000,
        approximate: bool = True,
    ) -> str:
        return self.server._xadd(key, fields, maxlen, approximate)

    def xrevrange(
        self, key: str, max: str = "+", min: str = "-", count: int = 1_000_000
    ) -> List[Tuple[str, Dict[str, str]]]:
        return self.server._xrevrange(key, max, min, count)

    def pubsub(self) -> "FakePubSub":
        self.server._check("pubsub")
        pubsub = FakePubSub(self.server)
        self.server.pubsubs.append(pubsub)
        return pubsub

    def pubsub_numsub(self, channel: str) -> List[Tuple[str, int]]:
        self.server._check("pubsub_numsub")
        return [(channel, self.server.subscribers(channel))]

    def close(self) -> None:
        self.server._check("close")
        self.closed = True


class FakePubSub:
    def __init__(self, server: FakeRedis) -> None:
        self.server = server
        self.channels: List[str] = []
        self.inbox: Deque[Dict[str, Any]] = deque()
        self.closed = False
        self.broken = False
        self.idle_reads = 0
        self.pings = 0
        self.read_timeouts: List[float] = []
        self.push_handler_func: Any = None

    def subscribe(self, channel: str) -> None:
        self.server._check("pubsub.subscribe")
        self.closed = False
        self.channels.append(channel)
        self.inbox.append(
            {"type": "subscribe", "pattern": None, "channel": channel, "data": 1}
        )

    def ping(self) -> None:
        self.server._check("pubsub.ping")
        self.pings += 1
        if not self.server.frozen:
            self.inbox.append(
                {"type": "pong", "pattern": None, "channel": None, "data": ""}
            )

    def get_message(self, timeout: float) -> Optional[Dict[str, Any]]:
        self.read_timeouts.append(timeout)
        self.server._check("pubsub.get_message")
        if self.server.frozen:
            self.idle_reads += 1
            assert self.idle_reads < IDLE_READS_LIMIT, "a read loop was never ended"
            self.server.when_idle()
            return None
        if self.broken:
            self.broken = False
            raise ConnectionError("Connection closed by server.")
        if self.inbox:
            return self.inbox.popleft()
        self.idle_reads += 1
        assert self.idle_reads < IDLE_READS_LIMIT, "a read loop was never ended"
        self.server.when_idle()
        return None

    def close(self) -> None:
        self.server._check("pubsub.close")
        self.closed = True
        self.channels.clear()
