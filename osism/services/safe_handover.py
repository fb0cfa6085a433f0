"""The listener's hand-over to Redis: acknowledged only what Redis took.

RabbitMQ's rule: acknowledge only what you have made safe, and stop
consuming instead of dropping. A notification is published on Redis, then
acknowledged. While Redis cannot take events the notifications are held,
in order and unacknowledged, and published again with a back-off; the
broker sends no more than the consumer's prefetch window meanwhile and keeps
the rest in its durable queues. A listener that stops, or is killed, leaves
what it holds unacknowledged: RabbitMQ delivers it again.
"""

import logging
import time
from collections import Counter, deque
from typing import Any, Callable, Deque, Iterator, Optional, Tuple

from osism.services.retry import Backoff

logger = logging.getLogger("osism.listener")


class SafeHandover:
    """``bridge.publish_now(event) -> bool`` publishes; ``backoff`` spaces the
    attempts while Redis cannot take events."""

    def __init__(
        self,
        bridge: Any,
        backoff: Backoff,
        stats: "Counter[str]",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bridge = bridge
        self.backoff = backoff
        self.stats = stats
        self.clock = clock
        # (message, event) not yet published, oldest first.
        self.pending: Deque[Tuple[Any, Any]] = deque()
        self._delays: Optional[Iterator[float]] = None
        self._next_try = 0.0

    @property
    def held(self) -> int:
        return len(self.pending)

    def offer(self, message: Any, event: Any) -> None:
        """Publish ``event`` and acknowledge ``message``, behind anything held."""
        self.pending.append((message, event))
        if self._delays is None:
            self.publish_pending()

    def retry_when_due(self) -> None:
        """Try the held notifications again once the back-off has passed."""
        if self.pending and self.clock() >= self._next_try:
            self.publish_pending()

    def publish_pending(self) -> None:
        published = 0
        while self.pending:
            message, event = self.pending[0]
            try:
                taken = self.bridge.publish_now(event)
            except Exception as e:
                # It can never be published (a payload that is not JSON):
                # it is not held for ever, and not requeued to circle.
                self.pending.popleft()
                self.stats["unpublishable"] += 1
                logger.error(
                    "Dropping notification %r, it cannot be published: %r",
                    event.get("event_type"),
                    e,
                )
                message.reject(requeue=False)
                continue
            if not taken:
                self._hold()
                return
            self.pending.popleft()
            message.ack()
            self.stats["handed_over"] += 1
            published += 1
            logger.debug("Handed %r to Redis", event.get("event_type"))
        if self._delays is not None:
            self._delays = None
            logger.info(
                "Redis takes events again: published %d held notifications",
                published,
            )

    def _hold(self) -> None:
        if self._delays is None:
            self._delays = self.backoff.delays()
            logger.warning(
                "Redis cannot take events: holding %d notifications "
                "unacknowledged, RabbitMQ keeps the rest until Redis is back",
                len(self.pending),
            )
        self.stats["held"] = len(self.pending)
        self._next_try = self.clock() + next(self._delays)

    def give_back(self) -> int:
        """Return what is held to the broker (requeued, not acknowledged);
        how many that was."""
        count = len(self.pending)
        for message, _ in self.pending:
            message.requeue()
        self.forget()
        return count

    def forget(self) -> None:
        """Drop what is held without a word to the broker: its channel is
        gone, and the broker delivers it again anyway."""
        self.pending.clear()
        self._delays = None
