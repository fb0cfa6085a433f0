"""Unit tests of osism.draining: on SIGTERM, deliver what was accepted, then
pass the signal on to the server's handler."""

import asyncio
import os
import signal
import threading
from typing import Any, List

import pytest

from osism import draining
from osism.draining import SigtermDrain, deliver_then_close
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_handler():
    """A SIGTERM handler standing in for the server's (uvicorn's); the
    handler of the test run comes back afterwards."""
    received: List[int] = []
    before = signal.signal(
        signal.SIGTERM, lambda signum, frame: received.append(signum)
    )
    yield received
    signal.signal(signal.SIGTERM, before)


async def test_sigterm_runs_the_drain_then_the_servers_handler(server_handler):
    steps: List[str] = []

    async def drain() -> None:
        steps.append("drained")

    sigterm = SigtermDrain(asyncio.get_running_loop(), drain)
    sigterm.install()

    os.kill(os.getpid(), signal.SIGTERM)
    await wait_until(lambda: server_handler)

    assert steps == ["drained"]
    assert server_handler == [signal.SIGTERM]
    # Once is enough: a second SIGTERM goes straight to the server.
    os.kill(os.getpid(), signal.SIGTERM)
    await wait_until(lambda: len(server_handler) == 2)
    assert steps == ["drained"]


async def test_a_failing_drain_still_passes_the_signal_on(server_handler, caplog):
    async def drain() -> None:
        raise RuntimeError("broken")

    SigtermDrain(asyncio.get_running_loop(), drain).install()

    os.kill(os.getpid(), signal.SIGTERM)
    await wait_until(lambda: server_handler)

    assert "Delivering before the stop failed: RuntimeError('broken')" in caplog.text


async def test_uninstalling_gives_the_server_its_handler_back(server_handler):
    async def drain() -> None:
        raise AssertionError("not to be called")

    sigterm = SigtermDrain(asyncio.get_running_loop(), drain)
    sigterm.install()
    sigterm.uninstall()
    sigterm.uninstall()

    os.kill(os.getpid(), signal.SIGTERM)
    await wait_until(lambda: server_handler)


async def test_outside_the_main_thread_nothing_is_installed(server_handler):
    sigterm = SigtermDrain(asyncio.get_running_loop(), lambda: None)
    before = signal.getsignal(signal.SIGTERM)

    thread = threading.Thread(target=sigterm.install)
    thread.start()
    thread.join(timeout=5)

    assert not sigterm.installed
    assert signal.getsignal(signal.SIGTERM) == before


class Bridge:
    def __init__(self, queued: int) -> None:
        self.queued = queued
        self.steps: List[Any] = []

    def health(self) -> dict:
        if self.queued:
            self.queued -= 1
        return {"local_queue": self.queued}

    def shutdown(self) -> None:
        self.steps.append(("shutdown", self.queued))


class Manager:
    def __init__(self, steps: List[Any]) -> None:
        self.steps = steps

    async def drain(self, timeout: float) -> None:
        self.steps.append(("drain", timeout <= 5.0))


async def test_the_local_queue_is_handed_over_before_the_bridge_stops(monkeypatch):
    monkeypatch.setattr(draining, "POLL_INTERVAL", 0.001)
    bridge = Bridge(queued=3)

    await deliver_then_close(bridge, Manager(bridge.steps), 5.0)

    assert bridge.steps == [("shutdown", 0), ("drain", True)]


async def test_a_local_queue_that_does_not_empty_is_given_up_at_the_bound(
    monkeypatch,
):
    monkeypatch.setattr(draining, "POLL_INTERVAL", 0.001)
    bridge = Bridge(queued=10**9)

    await deliver_then_close(bridge, Manager(bridge.steps), 0.05)

    assert [step[0] for step in bridge.steps] == ["shutdown", "drain"]
