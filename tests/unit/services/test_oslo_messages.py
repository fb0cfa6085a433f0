"""Unit tests of osism.services.oslo_messages: what a message on the bus says."""

import json

import pytest

from osism.services.oslo_messages import (
    MalformedNotification,
    Notification,
    decode_notification,
    parse_notification,
)
from tests.unit.services.openstack_bus import (
    EVENT_TYPE,
    NOTIFICATION,
    PAYLOAD,
    PUBLISHER,
    oslo,
)

pytestmark = pytest.mark.usefixtures("memory_broker")

PARSED = Notification(EVENT_TYPE, PAYLOAD, PUBLISHER, "6b4c6a4e-1")


class TestParseNotification:
    def test_an_oslo_envelope_gives_its_event_type_and_payload(self):
        assert parse_notification(oslo(NOTIFICATION)) == PARSED

    def test_an_unwrapped_notification_gives_its_event_type_and_payload(self):
        assert parse_notification(NOTIFICATION) == PARSED

    def test_what_it_gives_unpacks_into_type_payload_publisher_and_message_id(
        self,
    ):
        event_type, payload, publisher_id, message_id = parse_notification(NOTIFICATION)

        assert (event_type, payload, publisher_id, message_id) == (
            EVENT_TYPE,
            PAYLOAD,
            "ironic-conductor.host1",
            "6b4c6a4e-1",
        )

    @pytest.mark.parametrize("message_id", [None, "", 7, "x" * 256], ids=repr)
    def test_a_missing_or_unusable_message_id_is_none_not_malformed(self, message_id):
        body = {**NOTIFICATION, "message_id": message_id}

        assert parse_notification(oslo(body)).message_id is None

    @pytest.mark.parametrize(
        "publisher_id", [None, "", 7, ["ironic-conductor.host1"]], ids=repr
    )
    def test_a_missing_or_unusable_publisher_id_is_none_not_malformed(
        self, publisher_id
    ):
        body = {**NOTIFICATION, "publisher_id": publisher_id}
        without = {k: v for k, v in NOTIFICATION.items() if k != "publisher_id"}

        assert parse_notification(oslo(body)).publisher_id is None
        assert parse_notification(without)[:3] == (EVENT_TYPE, PAYLOAD, None)

    @pytest.mark.parametrize(
        "body, reason",
        [
            ([NOTIFICATION], "expected a JSON object, got list"),
            ("text", "expected a JSON object, got str"),
            (
                {"oslo.version": "2.0", "oslo.message": "{bad"},
                "'oslo.message' is not JSON: Expecting property name enclosed "
                "in double quotes: line 1 column 2 (char 1)",
            ),
            (
                {"oslo.version": "2.0", "oslo.message": NOTIFICATION},
                "'oslo.message' is not a string",
            ),
            (
                {"oslo.version": "2.0", "oslo.message": "[1]"},
                "'oslo.message' is not a JSON object but list",
            ),
            ({"payload": PAYLOAD}, "missing or empty 'event_type'"),
            ({"event_type": "", "payload": PAYLOAD}, "missing or empty 'event_type'"),
            ({"event_type": 7, "payload": PAYLOAD}, "missing or empty 'event_type'"),
            ({"event_type": EVENT_TYPE}, "missing or non-object 'payload'"),
            (
                {"event_type": EVENT_TYPE, "payload": ["node1"]},
                "missing or non-object 'payload'",
            ),
            (oslo({"event_type": EVENT_TYPE}), "missing or non-object 'payload'"),
        ],
    )
    def test_anything_else_is_malformed_with_a_reason(self, body, reason):
        with pytest.raises(MalformedNotification) as malformed:
            parse_notification(body)

        assert str(malformed.value) == reason


class TestDecodeNotification:
    def test_a_json_message_is_decoded_by_its_content_type(self, openstack):
        openstack.queue_message("q", oslo(NOTIFICATION))

        assert decode_notification(openstack.receive("q")) == PARSED

    def test_a_compressed_message_is_decompressed(self, openstack):
        openstack.queue_message("q", oslo(NOTIFICATION), compression="zlib")

        assert decode_notification(openstack.receive("q")) == PARSED

    def test_a_message_without_content_type_is_read_as_json(self, openstack):
        body = json.dumps(oslo(NOTIFICATION)).encode()
        openstack.queue_message("q", body, content_type=None, content_encoding=None)

        assert decode_notification(openstack.receive("q")) == PARSED

    def test_a_body_that_is_not_json_is_malformed(self, openstack):
        openstack.queue_message(
            "q", b"{not json", content_type="application/json", content_encoding="utf-8"
        )

        with pytest.raises(MalformedNotification) as malformed:
            decode_notification(openstack.receive("q"))

        assert str(malformed.value).startswith(
            "body is not JSON (content type 'application/json'): "
        )

    def test_a_pickled_body_is_refused_without_being_deserialised(self, openstack):
        openstack.queue_message("q", NOTIFICATION, serializer="pickle")

        with pytest.raises(MalformedNotification) as malformed:
            decode_notification(openstack.receive("q"))

        assert str(malformed.value) == (
            "body is not JSON (content type 'application/x-python-serialize'): "
            "Refusing to deserialize untrusted content of type pickle "
            "(application/x-python-serialize)"
        )
