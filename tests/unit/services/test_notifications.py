"""Unit tests of osism.services.notifications."""

from collections import Counter
from typing import Any

import pytest

from osism.services.notifications import NotificationSubject, subject_of
from tests.samples.openstack import (
    NODE_UUID,
    SAMPLES,
    TEXT_PAYLOAD_SAMPLE,
    received_by,
)


class TestSeedShapedEvents:
    """No publisher id and a seed service key first: the seed's rule."""

    def test_an_object_that_is_not_a_mapping_yields_no_subject(self):
        payload = {"ironic_object.data": ["not", "a", "mapping"]}

        assert subject_of("baremetal.node.update", payload) == NotificationSubject(
            "baremetal", None, None
        )

    def test_empty_values_fall_through_to_the_next_key(self):
        payload = {"nova_object.data": {"host": "", "name": "vm", "uuid": None}}

        assert subject_of("compute.instance.update", payload) == NotificationSubject(
            "compute", "vm", None
        )

    def test_no_candidate_key_yields_none(self):
        payload = {"keystone_object.data": {"other": "x"}}

        assert subject_of("identity.user.created", payload) == NotificationSubject(
            "identity", None, None
        )

    def test_the_service_stays_the_first_segment(self):
        payload = {"nova_object.data": {"host": "h1", "uuid": "u1"}}

        assert subject_of("nova.instance.update", payload) == NotificationSubject(
            "nova", "h1", "u1"
        )

    def test_values_that_are_not_strings_are_skipped(self):
        payload = {"nova_object.data": {"host": 7, "name": "vm", "uuid": ["u"]}}

        assert subject_of("compute.instance.update", payload) == NotificationSubject(
            "compute", "vm", None
        )

    @pytest.mark.parametrize(
        "event_type",
        [
            "baremetal.node.power_set.end",
            "baremetal.node.provision_set.success",
            "baremetal.anything.else",
            "baremetal",
        ],
    )
    def test_an_ironic_node_keeps_its_name(self, event_type):
        payload = {"ironic_object.data": {"name": "node1", "uuid": "u1"}}

        assert subject_of(event_type, payload) == NotificationSubject(
            "baremetal", "node1", "u1"
        )

    @pytest.mark.parametrize(
        "event_type",
        [
            "baremetal.port.update.end",
            "baremetal.portgroup.create.end",
            "baremetal.chassis.delete.end",
            "baremetal.deploy_template.update.end",
            "baremetal.deploytemplate.update.end",
            "baremetal.volumeconnector.create.end",
            "baremetal.volumetarget.delete.end",
            "baremetal.allocation.create.end",
            "baremetal.runbook.create.end",
            # However short the event type, its second segment names the object.
            "baremetal.port",
            "baremetal.allocation",
        ],
    )
    def test_other_ironic_objects_by_event_type_have_no_node(self, event_type):
        payload = {"ironic_object.data": {"name": "pg-18", "uuid": "u1"}}

        assert subject_of(event_type, payload) == NotificationSubject(
            "baremetal", None, "u1"
        )

    @pytest.mark.parametrize(
        "payload_name, node_name",
        [
            ("PortgroupCRUDPayload", None),
            ("DeployTemplateCRUDPayload", None),
            ("NodeSetPowerStatePayload", "node1"),
        ],
    )
    def test_the_ironic_payload_name_decides_over_the_event_type(
        self, payload_name, node_name
    ):
        payload = {
            "ironic_object.name": payload_name,
            "ironic_object.data": {"name": "node1", "uuid": "u1"},
        }

        assert subject_of("baremetal.node.update.end", payload) == NotificationSubject(
            "baremetal", node_name, "u1"
        )

    def test_an_ironic_payload_name_that_is_not_a_string_is_ignored(self):
        payload = {
            "ironic_object.name": 42,
            "ironic_object.data": {"name": "node1", "uuid": "u1"},
        }

        assert subject_of("baremetal.port.update.end", payload) == NotificationSubject(
            "baremetal", None, "u1"
        )

    def test_a_payload_that_is_not_an_object_yields_no_subject(self):
        text: Any = "text"

        subject = subject_of("baremetal.node.update.end", text)

        assert subject == NotificationSubject("baremetal", None, None)

    def test_an_event_type_that_is_not_a_string_raises_like_the_seed(self):
        with pytest.raises(AttributeError, match="'int' object has no attribute"):
            subject_of(42, {})  # type: ignore[arg-type]


class TestDocumentedSamples:
    def test_every_row_has_its_own_id(self):
        assert [i for i, n in Counter(s.id for s in SAMPLES).items() if n > 1] == []

    @pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
    def test_subject_of_a_documented_notification(self, sample):
        assert subject_of(
            sample.event_type, sample.payload, sample.publisher_id
        ) == NotificationSubject(
            sample.service_type, sample.node_name, sample.resource_id
        )

    def test_a_text_payload_names_only_the_service(self):
        sample = TEXT_PAYLOAD_SAMPLE

        assert subject_of(
            sample.event_type, sample.payload, sample.publisher_id
        ) == NotificationSubject("image", None, None)

    def test_nova_has_one_row_per_sample_file(self):
        nova_files = [s.id for s in SAMPLES if s.id.endswith(".json")]

        assert len(nova_files) == 139

    def test_rows_cover_every_service_type(self):
        assert Counter(s.service_type for s in SAMPLES).keys() == {
            "compute",
            "baremetal",
            "network",
            "volume",
            "image",
            "identity",
        }


class TestReceivedBy:
    def test_a_project_name_and_a_service_type_receive_the_same_rows(self):
        assert received_by(service="nova") == received_by(service="compute")
        assert len(received_by(service="nova")) > 100

    def test_a_node_filter_receives_only_rows_about_that_host(self):
        rows = received_by(node="host2")

        assert {s.id for s in rows} == {
            "instance-evacuate.json",
            "instance-live_migration_post_dest-end.json",
            "service-create.json",
            "service-delete.json",
            "cinder:backup.create.end",
        }

    def test_service_and_node_filters_combine(self):
        rows = received_by(service="ironic", node="node-1")

        assert rows and all(s.resource_id == NODE_UUID for s in rows)
        assert received_by(service="cinder", node="node-1") == []

    def test_no_filter_receives_every_row(self):
        assert received_by() == SAMPLES


class TestServiceOfRealNotifications:
    @pytest.mark.parametrize(
        "publisher_id, event_type, service_type",
        [
            ("nova-compute:host1", "instance.pause.end", "compute"),
            ("nova-api:fake-mini", "flavor.update", "compute"),
            ("nova-scheduler:host", "scheduler.select_destinations.end", "compute"),
            ("nova-conductor:host", "compute_task.build_instances.error", "compute"),
            ("nova-compute:host.example.com", "volume.usage", "compute"),
            ("ironic-conductor.host2", "baremetal.node.power_set.end", "baremetal"),
            ("ironic-api.host", "baremetal.port.create.end", "baremetal"),
            ("network.host3", "port.create.end", "network"),
            ("volume.host@backend", "volume.create.end", "volume"),
            ("snapshot.host@backend", "snapshot.create.end", "volume"),
            ("backup.host", "backup.create.end", "volume"),
            ("capacity.host@backend", "capacity.pool", "volume"),
            ("image.localhost", "image.update", "image"),
            ("identity.host", "identity.user.created", "identity"),
            ("compute.host1", "compute.instance.create.end", "compute"),
            ("conductor.host1", "compute_task.build_instances", "compute"),
            ("scheduler.host", "scheduler.select_destinations.start", "compute"),
            ("scheduler.host", "scheduler.create_volume", "volume"),
            ("scheduler.host", "scheduler.retype", "volume"),
            ("scheduler.host", "scheduler.unknown_method", "scheduler"),
            ("api.host", "keypair.create.end", "compute"),
            ("api.host", "api.fault", "api"),
            ("heat-engine:host", "orchestration.stack.create.end", "orchestration"),
        ],
    )
    def test_from_the_publisher_else_the_event_type(
        self, publisher_id, event_type, service_type
    ):
        subject = subject_of(event_type, {}, publisher_id)

        assert subject.service_type == service_type

    @pytest.mark.parametrize(
        "payload",
        [
            {"nova_object.data": {}},
            {"nova_object.namespace": "nova"},
        ],
    )
    def test_from_the_envelope_without_a_publisher(self, payload):
        assert subject_of("instance.pause.end", payload).service_type == "compute"

    @pytest.mark.parametrize(
        "event_type, service_type",
        [
            ("port.create.end", "network"),
            ("floatingip.update.end", "network"),
            ("snapshot.create.end", "volume"),
            ("group_snapshot.delete.end", "volume"),
            ("instance.create.end", "compute"),
            ("server_group.create", "compute"),
            ("task.success", "image"),
            ("metadef_namespace.create", "image"),
            ("scheduler.select_destinations.end", "compute"),
            ("orchestration.stack.create.end", "orchestration"),
            ("", "unknown"),
        ],
    )
    def test_from_the_event_type_without_publisher_or_envelope(
        self, event_type, service_type
    ):
        assert subject_of(event_type, {}).service_type == service_type

    def test_a_publisher_that_is_not_a_string_counts_as_absent(self):
        payload = {"ironic_object.data": {"name": "node1", "uuid": "u1"}}

        assert subject_of(
            "baremetal.node.update.end", payload, 42  # type: ignore[arg-type]
        ) == NotificationSubject("baremetal", "node1", "u1")


class TestNodeAndResourceOfRealNotifications:
    def test_libvirt_errors_concern_the_publishing_host(self):
        subject = subject_of("compute.libvirt.error", {"ip": "10.0.0.1"}, "compute.h1")

        assert subject == NotificationSubject("compute", "h1", None)

    def test_an_ipv6_host_of_the_publisher_keeps_all_its_colons(self):
        subject = subject_of("compute.libvirt.error", {}, "nova-compute:fd00::1")

        assert subject == NotificationSubject("compute", "fd00::1", None)

    def test_a_legacy_nova_kind_is_the_second_segment_however_short(self):
        subject = subject_of("compute.libvirt", {}, "compute.h1")

        assert subject == NotificationSubject("compute", "h1", None)

    @pytest.mark.parametrize("publisher_id", ["nova-compute", "nova-compute:"])
    def test_a_publisher_without_host_gives_no_node(self, publisher_id):
        payload = {"nova_object.data": {"ip": "10.0.0.1"}}

        assert subject_of(
            "libvirt.connect.error", payload, publisher_id
        ) == NotificationSubject("compute", None, None)

    def test_libvirt_errors_without_publisher_have_no_node(self):
        payload = {"nova_object.data": {"ip": "10.0.0.1"}}

        assert subject_of("libvirt.connect.error", payload) == NotificationSubject(
            "compute", None, None
        )

    def test_an_unknown_nova_kind_still_names_its_host(self):
        payload = {"nova_object.data": {"host": "h1", "uuid": "u1"}}

        assert subject_of(
            "future_thing.happened", payload, "nova-compute:h1"
        ) == NotificationSubject("compute", "h1", "u1")

    @pytest.mark.parametrize(
        "event_type, payload, subject",
        [
            ("compute", {"host": "h1", "uuid": "u1"}, ("compute", "h1", "u1")),
            ("compute.unknown", {"instance_id": "i1"}, ("compute", None, "i1")),
            (
                "volume.usage",
                {"volume_id": "v1", "instance_id": "i1"},
                ("compute", None, "v1"),
            ),
        ],
    )
    def test_legacy_nova_defaults(self, event_type, payload, subject):
        assert subject_of(event_type, payload, "compute.h1") == subject

    @pytest.mark.parametrize(
        "host, node_name",
        [
            ("host1@lvm#pool", "host1"),
            ("host1#pool", "host1"),
            ("host1", "host1"),
            # A backend or pool named with "@" or "#" stays out of the node.
            ("host1@lvm@2#pool#a", "host1"),
            ("host1#pool#a", "host1"),
            ("@lvm", None),
            ("", None),
            (None, None),
            (3, None),
        ],
    )
    def test_a_cinder_host_is_the_hostname_before_backend_and_pool(
        self, host, node_name
    ):
        payload = {"volume_id": "v1", "host": host}

        assert subject_of(
            "volume.create.end", payload, "volume.host1@lvm"
        ) == NotificationSubject("volume", node_name, "v1")

    def test_a_neutron_event_type_of_one_segment(self):
        assert subject_of(
            "port", {"port": {"id": "p1"}}, "network.h"
        ) == NotificationSubject("network", None, "p1")

    def test_a_neutron_event_type_of_two_segments(self):
        payload = {"router_interface": {"id": "r1"}}

        assert subject_of(
            "router.interface", payload, "network.h"
        ) == NotificationSubject("network", None, "r1")

    def test_an_envelope_of_another_project_names_its_object(self):
        payload = {"cinder_object.data": {"id": "v1", "host": "h1@lvm"}}

        assert subject_of("volume.thing.end", payload, "x.y") == NotificationSubject(
            "volume", None, "v1"
        )

    @pytest.mark.parametrize(
        "data, resource_id",
        [
            ({"uuid": "u1"}, "u1"),
            ({"uuid": "u1", "id": "i1"}, "u1"),
            ({"uuid": "", "id": "i1"}, "i1"),
        ],
    )
    def test_an_envelope_of_another_project_prefers_the_uuid(self, data, resource_id):
        payload = {"glance_object.data": data}

        assert subject_of("image.thing.end", payload, "x.y") == NotificationSubject(
            "image", None, resource_id
        )

    def test_an_unknown_service_has_no_subject(self):
        payload = {"stack_identity": "s1", "host": "h1"}

        assert subject_of(
            "orchestration.stack.create.end", payload, "heat-engine:h1"
        ) == NotificationSubject("orchestration", None, None)

    def test_an_ironic_payload_without_envelope_has_no_subject(self):
        payload = {"name": "node1", "uuid": "u1"}

        assert subject_of(
            "baremetal.node.update.end", payload, "ironic-api.h"
        ) == NotificationSubject("baremetal", None, None)


# JSON-shaped oddities a notification may carry where an object or an id
# is expected (a non-empty string is a valid id, so it is not one of them).
ODD_VALUES = [None, 0, 1.5, True, "", [], ["a"], {}, {"x": 1}]

# Real events, the key that holds their object or id, and the node they
# have whatever the payload (a libvirt error concerns its publisher's host).
REAL_EVENTS = [
    ("instance.pause.end", "nova-compute:h1", "nova_object.data", None),
    ("baremetal.node.power_set.end", "ironic-conductor.h1", "ironic_object.data", None),
    ("libvirt.connect.error", "nova-compute:h1", "nova_object.data", "h1"),
    ("port.update.end", "network.h1", "port", None),
    ("router.interface.create", "network.h1", "router_interface", None),
    ("volume.create.end", "volume.h1@lvm", "volume_id", None),
    ("image.update", "image.localhost", "id", None),
    ("identity.project.created", "identity.h1", "target", None),
    ("identity.user.created", "identity.h1", "resource_info", None),
    ("compute.instance.create.end", "compute.h1", "instance_id", None),
]


class TestOddPayloads:
    @pytest.mark.parametrize("odd", [*ODD_VALUES, "text"], ids=repr)
    @pytest.mark.parametrize("event_type, publisher_id, key, node_name", REAL_EVENTS)
    def test_a_payload_that_is_not_an_object(
        self, event_type, publisher_id, key, node_name, odd
    ):
        subject = subject_of(event_type, odd, publisher_id)

        assert (subject.node_name, subject.resource_id) == (node_name, None)

    @pytest.mark.parametrize("odd", ODD_VALUES, ids=repr)
    @pytest.mark.parametrize("event_type, publisher_id, key, node_name", REAL_EVENTS)
    def test_an_odd_object_or_id(self, event_type, publisher_id, key, node_name, odd):
        for payload in ({key: odd}, {key: {"id": odd, "uuid": odd, "host": odd}}):
            subject = subject_of(event_type, payload, publisher_id)

            assert (subject.node_name, subject.resource_id) == (node_name, None)

    @pytest.mark.parametrize("odd", [*ODD_VALUES, "text"], ids=repr)
    def test_odd_seed_payloads(self, odd):
        for payload in (odd, {"ironic_object.data": odd}):
            subject = subject_of("baremetal.node.update.end", payload)

            assert (subject.node_name, subject.resource_id) == (None, None)
