"""Unit tests of osism.services.event_message: the event a notification
becomes."""

from osism.services.event_message import event_from_notification


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
