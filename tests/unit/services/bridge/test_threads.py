"""Unit tests of osism.services.bridge.threads. The one place a real thread
is started: a daemon whose body returns at once."""

import threading
from typing import Any

from osism.services.bridge import threads
from tests.unit.services.bridge_doubles import FakeThread


def test_a_daemon_thread_is_started_with_the_parts_name():
    ran = threading.Event()

    thread = threads.start_daemon(ran.set, "test-part")
    thread.join(timeout=5.0)

    assert ran.is_set()
    assert thread.name == "osism-event-bridge-test-part"
    assert thread.daemon is True


class TestRunningAndJoining:
    def test_no_thread_and_a_finished_one_are_not_running_nor_joined(self):
        finished: Any = FakeThread(lambda: None, "x")
        finished.run()

        threads.join_if_running(None, timeout=5.0)
        threads.join_if_running(finished, timeout=5.0)

        assert (threads.is_running(None), threads.is_running(finished)) == (
            False,
            False,
        )
        assert finished.joined == []

    def test_a_live_thread_is_running_and_joined_with_the_timeout(self):
        alive: Any = FakeThread(lambda: None, "x")

        threads.join_if_running(alive, timeout=2.5)

        assert threads.is_running(alive) is True
        assert alive.joined == [2.5]
