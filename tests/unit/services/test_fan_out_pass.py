"""Unit tests of osism.services.fan_out_pass: frames staged per group of
clients in a turn of the loop, written at its end, one batch per group."""

import asyncio
import logging

import pytest

from osism.services.fan_out_pass import FanOutPass
from tests.unit.services.sending_doubles import Client

pytestmark = pytest.mark.anyio

WS = "osism.websocket"


@pytest.fixture
def fan_out(setup):
    return FanOutPass(setup.sending, setup.stats)


def texts(client: Client):
    return [frame for _, frame in client.log]


class TestStaging:
    async def test_frames_are_written_at_the_end_of_the_turn(self, setup, fan_out):
        a, b = setup.client(), setup.client()
        members = [a.connection, b.connection]

        fan_out.stage(members, "e1")
        fan_out.stage(members, "e2")

        assert fan_out.pending == 4
        assert a.log == b.log == []
        await asyncio.sleep(0)
        assert fan_out.pending == 0
        for client in (a, b):
            assert client.log == [("direct", "e1"), ("direct", "e2")]
            # One write for the group's two frames.
            assert client.writer.batches == 1
            assert client.writer.calls == 0
        assert setup.stats["broadcast"] == 4

    async def test_each_group_gets_only_its_own_frames(self, setup, fan_out):
        a, b, c = setup.client(), setup.client(), setup.client()
        compute, everything = [a.connection], [b.connection, c.connection]

        fan_out.stage(everything, "e1")
        fan_out.stage(compute, "e2")
        fan_out.stage(everything, "e2")
        fan_out.stage(everything, "e3")
        await asyncio.sleep(0)

        assert texts(a) == ["e2"]
        assert texts(b) == texts(c) == ["e1", "e2", "e3"]
        assert setup.stats["broadcast"] == 7

    async def test_one_write_pass_per_turn(self, setup, fan_out, mocker):
        client = setup.client()
        write = mocker.spy(fan_out, "write")

        fan_out.stage([client.connection], "e1")
        fan_out.stage([client.connection], "e2")
        await asyncio.sleep(0)
        fan_out.stage([client.connection], "e3")
        await asyncio.sleep(0)

        assert write.call_count == 2
        assert texts(client) == ["e1", "e2", "e3"]
        assert setup.stats["broadcast"] == 3

    async def test_nothing_staged_nothing_written(self, setup, fan_out):
        fan_out.write()

        assert setup.stats["broadcast"] == 0
        assert fan_out.pending == 0


class TestGroupsThatChange:
    """The registry makes new member lists on every change; a list staged
    is the group as it was."""

    async def test_a_client_regrouped_meanwhile_keeps_its_order(self, setup, fan_out):
        client = setup.client()
        old_group = [client.connection]
        new_group = [client.connection]

        fan_out.stage(old_group, "e1")
        fan_out.stage(new_group, "e2")
        fan_out.stage(old_group, "e3")
        await asyncio.sleep(0)

        # e3 was matched with the filters it had when e1 was; all of the
        # old group's frames go before the new group's.
        assert texts(client) == ["e1", "e3", "e2"]

    async def test_a_client_that_connects_meanwhile_gets_only_what_follows(
        self, setup, fan_out
    ):
        early = setup.client()
        fan_out.stage([early.connection], "e1")
        late = setup.client()
        fan_out.stage([early.connection, late.connection], "e2")
        await asyncio.sleep(0)

        assert texts(early) == ["e1", "e2"]
        assert texts(late) == ["e2"]

    async def test_a_client_that_left_meanwhile_gets_nothing(self, setup, fan_out):
        staying, leaving = setup.client(), setup.client()
        fan_out.stage([staying.connection, leaving.connection], "e1")

        setup.sending.forget(leaving.connection)
        await asyncio.sleep(0)

        assert texts(staying) == ["e1"]
        assert leaving.log == []
        assert leaving.connection.sender is None
        assert setup.stats["broadcast"] == 1


class TestFailures:
    async def test_a_client_whose_write_fails_does_not_keep_the_others_from_theirs(
        self, setup, fan_out, caplog
    ):
        caplog.set_level(logging.ERROR, logger=WS)
        first, failing, last = setup.client(), setup.client(), setup.client()
        failing.writer.write_frames_now = lambda batch: 1 / 0

        fan_out.stage([first.connection, failing.connection, last.connection], "e1")
        await asyncio.sleep(0)

        assert texts(first) == texts(last) == ["e1"]
        assert setup.stats["broadcast"] == 2
        assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
            (
                WS,
                logging.ERROR,
                "Error writing to WebSocket client h:2: "
                "ZeroDivisionError('division by zero')",
            )
        ]
