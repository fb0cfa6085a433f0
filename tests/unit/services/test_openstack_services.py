"""Unit tests of osism.services.openstack_services: service names."""

import pytest

from osism.services.openstack_services import service_names, service_of
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
