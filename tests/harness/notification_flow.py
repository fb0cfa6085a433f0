"""Numbered notifications flowing into RabbitMQ, as Ironic sends them.

Notification ``n`` concerns the flow's node, has the resource id
``n<number>`` (``n00042``, see :mod:`tests.harness.tally`) and the oslo
message id ``<tag>-<number>``: the listener makes that the event's id, so a
redelivered notification keeps it. A notification counts as sent once the
broker confirmed it and a queue took it; one that failed (the broker away,
no queue bound) is published again under the same number until it is.
"""

import threading
import time
import uuid
from collections import Counter
from typing import Any, Dict, List, Optional

from tests.harness.openstack_notifier import Notifier, Unrouted
from tests.harness.waiting import wait_for

EVENT_TYPE = "baremetal.node.power_set.end"
# Pause after a failed attempt.
RETRY_INTERVAL = 0.05


def payload(node: str, number: int) -> Dict[str, Any]:
    return {
        "ironic_object.name": "NodeSetPowerStatePayload",
        "ironic_object.namespace": "ironic",
        "ironic_object.version": "1.16",
        "ironic_object.data": {
            "uuid": f"n{number:05d}",
            "name": node,
            "power_state": "power on",
        },
    }


class NotificationFlow:
    """Publishes numbered notifications on ``url``'s ``ironic`` exchange,
    from the caller's thread (:meth:`publish`) or a thread of its own
    (:meth:`start` ... :meth:`stop`), ``interval`` seconds apart."""

    def __init__(self, url: str, node: str, interval: float = 0.005) -> None:
        self.notifier = Notifier(url)
        self.node = node
        self.interval = interval
        self.tag = uuid.uuid4().hex[:8]
        # Numbers in the order the broker took them (0, 1, 2, ...), and when.
        self.accepted: List[int] = []
        self.accepted_at: List[float] = []
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def message_id(self, number: int) -> str:
        return f"{self.tag}-{number:05d}"

    @property
    def sent(self) -> List[int]:
        return list(self.accepted)

    def accepted_before(self, moment: float) -> List[int]:
        """The numbers the broker had taken at ``moment`` (time.monotonic())."""
        return [n for n, t in zip(self.accepted, self.accepted_at) if t <= moment]

    def publish(self, count: int) -> None:
        """Publish ``count`` more, each until the broker took it."""
        for _ in range(count):
            self._publish_next()

    def start(self, limit: Optional[int] = None) -> None:
        """Publish from a thread until :meth:`stop` (or ``limit`` in all)."""
        self._stop.clear()
        # A daemon: a failed test that did not stop it must not keep the
        # test run from ending.
        self._thread = threading.Thread(
            target=self._run, args=(limit,), name="notification-flow", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.notifier.close()

    def wait_accepted(self, count: int, timeout: float = 15.0) -> None:
        """Until the broker has taken ``count`` notifications in all."""
        wait_for(
            lambda: len(self.accepted) >= count,
            timeout,
            f"{count} notifications taken by the broker (so far "
            f"{len(self.accepted)}, failures {dict(self.failures)})",
        )

    def _run(self, limit: Optional[int]) -> None:
        while not self._stop.is_set():
            if limit is not None and len(self.accepted) >= limit:
                return
            self._publish_next()
            if self.interval:
                self._stop.wait(self.interval)

    def _publish_next(self) -> None:
        with self._lock:
            number = len(self.accepted)
            while not self._try(number):
                if self._stop.wait(RETRY_INTERVAL) and self._thread is not None:
                    return
            self.accepted.append(number)
            self.accepted_at.append(time.monotonic())

    def _try(self, number: int) -> bool:
        try:
            self.notifier.notify(
                "ironic",
                EVENT_TYPE,
                payload(self.node, number),
                publisher_id="ironic-conductor.host1",
                message_id=self.message_id(number),
            )
            return True
        except Unrouted:
            self.failures["unrouted"] += 1
        except Exception as e:
            self.failures[type(e).__name__] += 1
            self.notifier.reset()
        return False
