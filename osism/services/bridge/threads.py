"""How the bridge's parts start their threads.

Each part runs its loop in a daemon thread of its own, named
``osism-event-bridge-<part>`` (what an operator sees in a thread dump, and
what the integration tests count). Unit tests stand in for
:func:`start_daemon` and run the loops in their own thread instead.
"""

import threading
from typing import Callable, Optional


def start_daemon(target: Callable[[], None], part: str) -> threading.Thread:
    thread = threading.Thread(
        target=target, name=f"osism-event-bridge-{part}", daemon=True
    )
    thread.start()
    return thread


def is_running(thread: Optional[threading.Thread]) -> bool:
    return thread is not None and thread.is_alive()


def join_if_running(thread: Optional[threading.Thread], timeout: float) -> None:
    if thread is not None and thread.is_alive():
        thread.join(timeout=timeout)
