"""Unit tests of osism.services.event_message: the event a notification
becomes."""

import os
import uuid
from datetime import datetime, timezone

import pytest

from osism.services.event_message import (
    RandomIds,
    UtcClock,
    event_from_notification,
    utc_now_text,
)


class TestEventFromNotification:
    def test_the_publisher_decides_the_subject_of_a_legacy_notification(self):
        payload = {"instance_id": "i1", "host": "compute-1"}

        event = event_from_notification(
            "compute.instance.create.end", payload, "compute.compute-1", "e1", "t"
        )

        assert event.to_dict() == {
            "id": "e1",
            "timestamp": "t",
            "event_type": "compute.instance.create.end",
            "source": "openstack",
            "node_name": "compute-1",
            "data": {
                "instance_id": "i1",
                "host": "compute-1",
                "service_type": "compute",
                "resource_id": "i1",
                "publisher_id": "compute.compute-1",
            },
        }

    def test_without_a_publisher_the_seeds_rule_applies(self):
        payload = {"instance_id": "i1", "host": "compute-1"}

        event = event_from_notification("compute.instance.create.end", payload)

        assert event.node_name is None
        assert event.data == {**payload, "service_type": "compute", "resource_id": None}


class TestRandomIds:
    def test_every_id_is_the_text_of_a_random_uuid_and_none_repeats(self):
        ids = RandomIds(batch=8)
        made = [ids() for _ in range(2000)]
        assert len(set(made)) == 2000
        # Only the bits UUID version 4 fixes are fixed: every hex digit
        # the variant allows occurs.
        assert {text[19] for text in made} == set("89ab")
        assert {text[14] for text in made} == {"4"}
        assert len({text[15] for text in made}) == 16
        for text in made:
            parsed = uuid.UUID(text)
            assert str(parsed) == text
            assert parsed.version == 4
            assert parsed.variant == uuid.RFC_4122

    def test_a_forked_child_does_not_repeat_its_parents_ids(self):
        ids = RandomIds()
        ids()  # the parent holds random bytes for 255 more
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover (the child's coverage is not kept)
            os.write(write_end, ids().encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(child, 0)
        with os.fdopen(read_end, "rb") as f:
            childs = f.read().decode()
        assert status == 0
        assert uuid.UUID(childs).version == 4
        assert childs != ids()


class TestUtcClock:
    @pytest.mark.parametrize(
        "ns",
        [
            1_765_060_000_123_456_789,
            1_765_060_000_000_000_999,
            946_684_799_999_999_000,
            1_000_000_000_000_001_000,
        ],
    )
    def test_the_text_is_the_seeds_isoformat_with_z(self, ns):
        second, micro = ns // 10**9, ns // 1000 % 10**6
        seeds = (
            datetime.fromtimestamp(second, timezone.utc)
            .replace(microsecond=micro)
            .isoformat()
            .replace("+00:00", "Z")
        )
        assert UtcClock(lambda: ns)() == seeds

    def test_the_time_of_day_follows_the_clock_from_second_to_second(self):
        now = [1_765_060_000_999_999_000]
        clock = UtcClock(lambda: now[0])
        assert clock() == "2025-12-06T22:26:40.999999Z"
        now[0] += 1000
        assert clock() == "2025-12-06T22:26:41Z"
        now[0] += 86_400 * 10**9 + 5000
        assert clock() == "2025-12-07T22:26:41.000005Z"

    def test_by_default_it_is_now(self):
        before = datetime.now(timezone.utc).replace(microsecond=0)
        text = utc_now_text()
        after = datetime.now(timezone.utc)
        assert text.endswith("Z")
        assert before <= datetime.fromisoformat(text[:-1] + "+00:00") <= after
