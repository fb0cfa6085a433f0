"""Unit tests of osism.services.notifications."""

import pytest

from osism.services.notifications import (
    NotificationSubject,
    service_of,
    subject_of,
)


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


class TestSubjectOf:
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
