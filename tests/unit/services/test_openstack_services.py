"""Unit tests of osism.services.openstack_services: service names."""

import pytest

from osism.services.openstack_services import (
    SERVICE_TYPE_BY_PUBLISHER,
    service_names,
    service_of,
    service_of_publisher,
)
from tests.samples.openstack import SERVICE_FILTER_NAMES


class TestServiceOf:
    @pytest.mark.parametrize(
        "event_type, service",
        [
            ("baremetal.node.power_set.end", "baremetal"),
            ("compute", "compute"),
            ("", "unknown"),
            (".leading", ""),
        ],
    )
    def test_service_is_the_first_dot_segment(self, event_type, service):
        assert service_of(event_type) == service


class TestServiceOfPublisher:
    @pytest.mark.parametrize(
        "publisher_id, service_type",
        [
            # Versioned: "<binary>:<host>" (nova), "<binary>.<host>" (ironic).
            ("nova-compute:host1", "compute"),
            ("nova-api:ctl-1.example.com", "compute"),
            ("ironic-conductor.host1", "baremetal"),
            ("ironic-api.ctl-1.example.com", "baremetal"),
            ("neutron-openvswitch-agent:net-1", "network"),
            # Legacy: "<topic>.<host>", the host a name with dashes and dots.
            ("compute.node-1.example.com", "compute"),
            ("network.net-node-2", "network"),
            ("volume.storage-1@lvm#pool", "volume"),
            ("image.localhost", "image"),
            ("identity.keystone-1", "identity"),
            # A topic followed by a colon, the host an IPv6 address.
            ("compute:fd00::1", "compute"),
            ("volume:cinder-volume-1", "volume"),
        ],
    )
    def test_the_service_is_named_by_the_part_before_the_host(
        self, publisher_id, service_type
    ):
        assert service_of_publisher(publisher_id) == service_type

    @pytest.mark.parametrize(
        "publisher_id",
        ["scheduler.host1", "api.host1", "heat-engine:host1", "", "host1"],
    )
    def test_shared_or_unknown_senders_name_no_service(self, publisher_id):
        assert service_of_publisher(publisher_id) is None

    def test_every_sender_in_the_table_is_found_with_any_host(self):
        for sender, service_type in SERVICE_TYPE_BY_PUBLISHER.items():
            assert service_of_publisher(f"{sender}.host-1") == service_type
            assert service_of_publisher(f"{sender}-a-worker:host-1") == service_type


class TestServiceNames:
    @pytest.mark.parametrize(
        "name, names",
        [
            ("compute", {"compute", "nova"}),
            ("nova", {"compute", "nova"}),
            ("baremetal", {"baremetal", "ironic"}),
            ("ironic", {"baremetal", "ironic"}),
            ("network", {"network", "neutron"}),
            ("neutron", {"network", "neutron"}),
            ("volume", {"volume", "cinder", "block-storage"}),
            ("cinder", {"volume", "cinder", "block-storage"}),
            ("block-storage", {"volume", "cinder", "block-storage"}),
            ("image", {"image", "glance"}),
            ("glance", {"image", "glance"}),
            ("identity", {"identity", "keystone"}),
            ("keystone", {"identity", "keystone"}),
            ("orchestration", {"orchestration"}),
            ("unknown", {"unknown"}),
        ],
    )
    def test_names_of_a_service(self, name, names):
        assert service_names(name) == frozenset(names)

    @pytest.mark.parametrize("service_type", sorted(SERVICE_FILTER_NAMES))
    def test_agree_with_the_filter_names_of_the_samples(self, service_type):
        assert service_names(service_type) == SERVICE_FILTER_NAMES[service_type]
