"""Who received what a bridge published, and waiting for them to be back.

Redis pub/sub delivers a message only to those subscribed at that moment.
An event nobody received is kept for a while (an API's subscriber may be
reconnecting), and after an outage kept events wait until as many
subscribers listen as received the last event that anybody received.
"""

import logging
import time
from collections import Counter
from typing import Any, Callable, Optional

logger = logging.getLogger("osism.event_bridge")


class Receivers:
    """``subscriber_wait``: how long an event is kept for subscribers to come
    (REDIS_SUBSCRIBER_WAIT). ``reconnect_window``: how long every subscriber
    may take to reconnect after an outage (the longest reconnect delay plus
    one retry delay), waited for when nothing tells how many there are.
    ``clock`` is a monotonic clock."""

    def __init__(
        self,
        subscriber_wait: float,
        reconnect_window: float,
        stats: "Counter[str]",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subscriber_wait = subscriber_wait
        self.reconnect_window = reconnect_window
        self.stats = stats
        # How many received the last event that anybody received.
        self.last_count = 0
        # Since when nobody received what was published, and since when a
        # flush waits for the subscribers to be back.
        self.nobody_since: Optional[float] = None
        self._waiting_since: Optional[float] = None
        self._clock = clock

    def keeps_unreceived(self, receivers: int) -> bool:
        """Whether an event that ``receivers`` subscribers received is kept to
        be offered again.

        It is when nobody received it, until nobody has subscribed for
        ``subscriber_wait`` seconds: that covers an API whose subscriber is
        reconnecting or restarting. After that, events go to nobody as in the
        seed, counted.
        """
        if receivers > 0:
            self.nobody_since = None
            self.last_count = receivers
            return False
        now = self._clock()
        if self.nobody_since is None:
            self.nobody_since = now
        if now - self.nobody_since < self.subscriber_wait:
            return True
        self.stats["unreceived"] += 1
        return False

    def back(self, client: Any, channel: str) -> bool:
        """Whether the subscribers of ``channel`` are back to take kept events.

        After an outage the API processes resubscribe one by one; publishing
        kept events as soon as the first is back would lose them for the
        others. When the count of the last receivers is known, that many are
        waited for (at most ``subscriber_wait`` seconds); when it is not (an
        API process that had not published), the whole ``reconnect_window``.
        Without a client, or when Redis cannot count them, nothing is held
        back.
        """
        if client is None:
            return True
        expected = self.last_count
        try:
            listening = int(client.pubsub_numsub(channel)[0][1])
        except Exception as e:
            logger.debug("Counting the Redis subscribers failed: %s", e)
            return True
        if expected and listening >= expected:
            self._waiting_since = None
            return True
        now = self._clock()
        limit = self.subscriber_wait if expected else self.reconnect_window
        if self._waiting_since is None:
            self._waiting_since = now
            logger.info(
                "Waiting up to %g s for the Redis subscribers (%d of %s back) "
                "before publishing kept events",
                limit,
                listening,
                expected or "unknown",
            )
        if now - self._waiting_since < limit:
            return False
        self._waiting_since = None
        self.last_count = listening
        return True
