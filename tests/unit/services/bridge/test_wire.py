"""Unit tests of osism.services.bridge.wire: the message on the channel."""

import json

import pytest

from osism.services.bridge import wire

EVENT = {"event_type": "baremetal.node.power_set.end", "payload": {"a": 1}}


class TestMakingAnEvent:
    def test_without_a_publisher_id_it_is_the_seeds_two_keys(self):
        assert wire.make_event("x", {"a": 1}) == {
            "event_type": "x",
            "payload": {"a": 1},
        }

    def test_a_publisher_id_rides_along(self):
        assert wire.make_event("x", {}, "nova-compute:host1") == {
            "event_type": "x",
            "payload": {},
            "publisher_id": "nova-compute:host1",
        }

    def test_the_id_and_time_it_entered_with_ride_along(self):
        assert wire.make_event("x", {}, None, "e-1", "2026-12-06T00:00:00Z") == {
            "event_type": "x",
            "payload": {},
            "id": "e-1",
            "timestamp": "2026-12-06T00:00:00Z",
        }


class TestIdAndText:
    @pytest.mark.parametrize(
        ("event", "event_id"),
        [
            pytest.param({**EVENT, "id": "e-1"}, "e-1", id="a-string"),
            pytest.param(EVENT, None, id="absent"),
            pytest.param({**EVENT, "id": ""}, None, id="empty"),
            pytest.param({**EVENT, "id": 7}, None, id="not-a-string"),
        ],
    )
    def test_only_a_non_empty_string_is_an_id(self, event, event_id):
        assert wire.id_of(event) == event_id

    def test_the_timestamp_is_read_the_same_way(self):
        assert wire.text_of({**EVENT, "timestamp": "t"}, wire.TIMESTAMP_KEY) == "t"
        assert wire.text_of({**EVENT, "timestamp": 1}, wire.TIMESTAMP_KEY) is None


class TestEncoding:
    def test_it_is_json_in_the_order_of_the_keys(self):
        assert wire.encode(EVENT) == (
            '{"event_type": "baremetal.node.power_set.end", "payload": {"a": 1}}'
        )

    def test_a_payload_that_is_not_json_raises(self):
        with pytest.raises(TypeError, match="not JSON serializable"):
            wire.encode({"event_type": "x", "payload": {"when": object()}})


class TestDecoding:
    def test_an_event_comes_back_as_it_was_sent_with_every_key(self):
        event = {**EVENT, "publisher_id": "p", "origin": "o", "other": [1]}

        assert wire.decode(json.dumps(event)) == event

    def test_text_that_is_not_json_raises_a_json_error(self):
        with pytest.raises(json.JSONDecodeError):
            wire.decode("not json")

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            ("[1, 2]", "expected a JSON object, got list"),
            ('"text"', "expected a JSON object, got str"),
            ('{"payload": {}}', "missing or non-string 'event_type'"),
            ('{"event_type": 1, "payload": {}}', "missing or non-string 'event_type'"),
            ('{"event_type": "x"}', "missing or non-object 'payload'"),
            ('{"event_type": "x", "payload": []}', "missing or non-object 'payload'"),
        ],
    )
    def test_json_that_is_not_an_event_raises_with_the_reason(self, data, reason):
        with pytest.raises(wire.InvalidEvent) as raised:
            wire.decode(data)

        assert str(raised.value) == reason
        assert wire.invalid_reason(json.loads(data)) == reason

    def test_an_event_has_no_invalid_reason(self):
        assert wire.invalid_reason(EVENT) is None


class TestPublisherId:
    @pytest.mark.parametrize(
        ("event", "publisher_id"),
        [
            pytest.param({**EVENT, "publisher_id": "network.host3"}, "network.host3"),
            pytest.param(EVENT, None, id="absent"),
            pytest.param({**EVENT, "publisher_id": None}, None, id="null"),
            pytest.param({**EVENT, "publisher_id": ["a"]}, None, id="not-a-string"),
        ],
    )
    def test_only_a_string_is_a_publisher_id(self, event, publisher_id):
        assert wire.publisher_id_of(event) == publisher_id


class TestOrigin:
    def test_an_event_marked_with_an_origin_carries_it_and_the_rest(self):
        marked = wire.with_origin(EVENT, "abc")

        assert marked == {**EVENT, "origin": "abc"}
        assert wire.origin_of(marked) == "abc"
        assert "origin" not in EVENT

    def test_an_unmarked_event_has_no_origin(self):
        assert wire.origin_of(EVENT) is None


def test_the_channel_and_keys_are_the_contracts():
    assert (wire.CHANNEL, wire.ORIGIN_KEY, wire.PUBLISHER_KEY) == (
        "osism:events",
        "origin",
        "publisher_id",
    )
