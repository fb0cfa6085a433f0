"""The event bridge inside the test process: its threads."""

import threading
from typing import List

BRIDGE_THREAD_PREFIX = "osism-event-bridge-"


def bridge_threads() -> List[str]:
    """Names of the event bridge threads alive in this process."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith(BRIDGE_THREAD_PREFIX)
    )
