"""Unit tests of the listener's settings (osism.listener_settings and their
validation in osism.settings): LISTENER_EXCHANGES (service -> exchange) and
LISTENER_TOPICS (service -> topics), read from the environment, and what an
operator is told when they are wrong."""

from typing import Dict

import pytest
from pydantic import ValidationError

from osism.listener_settings import (
    default_topic,
    parse_listener_exchanges,
    parse_listener_topics,
)
from osism.settings import Settings, describe_invalid_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("LISTENER_EXCHANGES", "LISTENER_TOPICS", "LISTENER_HEARTBEAT"):
        monkeypatch.delenv(name, raising=False)


def settings_from(monkeypatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def problems(monkeypatch, **env: str) -> str:
    """The operator's message for settings that must be refused."""
    with pytest.raises(ValidationError) as refused:
        settings_from(monkeypatch, **env)
    return describe_invalid_settings(refused.value)


class TestListenerExchanges:
    def test_by_default_each_service_publishes_on_the_exchange_of_its_name(self):
        assert Settings().listener_exchanges == {
            "ironic": "ironic",
            "nova": "nova",
            "neutron": "neutron",
            "cinder": "cinder",
            "keystone": "keystone",
            "glance": "glance",
        }

    def test_service_equals_exchange_gives_a_service_another_exchange(
        self, monkeypatch
    ):
        settings = settings_from(
            monkeypatch, LISTENER_EXCHANGES=" ironic, cinder = openstack ,,nova"
        )

        assert settings.listener_exchanges == {
            "ironic": "ironic",
            "cinder": "openstack",
            "nova": "nova",
        }

    def test_a_service_named_twice_alike_counts_once(self):
        assert parse_listener_exchanges("nova,nova=nova,nova") == {"nova": "nova"}

    def test_lists_and_mappings_are_taken_as_well(self):
        assert parse_listener_exchanges(["nova", "cinder=openstack"]) == {
            "nova": "nova",
            "cinder": "openstack",
        }
        assert parse_listener_exchanges({"cinder": "openstack"}) == {
            "cinder": "openstack"
        }

    @pytest.mark.parametrize(
        "value, problem",
        [
            (" , ", "names no service"),
            ("nova,cinder=", "'cinder=' has an empty exchange"),
            ("=openstack", "'=openstack' has an empty service"),
            ("nova,nova=compute", "nova is given two exchanges, nova and compute"),
            (
                "no va",
                "service 'no va' in 'no va' is not a name (letters, digits and "
                "'_.:-' only)",
            ),
            (
                "cinder=open#stack",
                "exchange 'open#stack' in 'cinder=open#stack' is not a name "
                "(letters, digits and '_.:-' only)",
            ),
        ],
    )
    def test_bad_values_are_refused_naming_the_variable(
        self, monkeypatch, value, problem
    ):
        assert problems(monkeypatch, LISTENER_EXCHANGES=value) == (
            f"Invalid settings:\n  LISTENER_EXCHANGES: {problem}"
        )


class TestListenerTopics:
    def test_by_default_no_service_has_topics_of_its_own(self):
        settings = Settings()

        assert settings.listener_topics == {}
        assert settings.topics_of("nova") == ["nova_versioned_notifications"]
        assert default_topic("ironic") == "ironic_versioned_notifications"

    def test_named_services_get_their_topics_the_others_keep_the_default(
        self, monkeypatch
    ):
        settings = settings_from(
            monkeypatch,
            LISTENER_EXCHANGES="ironic,nova,neutron,cinder=openstack",
            LISTENER_TOPICS=(
                " nova = versioned_notifications ; neutron=notifications, mine,"
                "notifications;cinder=notifications;"
            ),
        )

        topics: Dict[str, list] = {
            service: settings.topics_of(service)
            for service in settings.listener_exchanges
        }
        assert topics == {
            "ironic": ["ironic_versioned_notifications"],
            "nova": ["versioned_notifications"],
            "neutron": ["notifications", "mine"],
            "cinder": ["notifications"],
        }

    def test_mappings_are_taken_as_well(self):
        assert parse_listener_topics({"nova": ["a", "b"]}) == {"nova": ["a", "b"]}

    @pytest.mark.parametrize(
        "value, problem",
        [
            (
                "nova=versioned_notifications;swift=notifications",
                "swift is not among the services of LISTENER_EXCHANGES (ironic, "
                "nova, neutron, cinder, keystone, glance)",
            ),
            (
                "swift=a;s3=b",
                "swift, s3 are not among the services of LISTENER_EXCHANGES "
                "(ironic, nova, neutron, cinder, keystone, glance)",
            ),
            ("nova=", "'nova=' has an empty topic"),
            ("nova=a,,b", "'nova=a,,b' has an empty topic"),
            ("=notifications", "'=notifications' has an empty service"),
            (
                "nova",
                "'nova' is not <service>=<topic>[,<topic>...] (entries are "
                "separated by ';')",
            ),
            ("nova=a;nova=b", "nova is named twice"),
            (
                "nova=notifications.*",
                "topic 'notifications.*' in 'nova=notifications.*' is not a name "
                "(letters, digits and '_.:-' only)",
            ),
        ],
    )
    def test_bad_values_are_refused_naming_the_variable(
        self, monkeypatch, value, problem
    ):
        assert problems(monkeypatch, LISTENER_TOPICS=value) == (
            f"Invalid settings:\n  LISTENER_TOPICS: {problem}"
        )

    def test_topics_are_not_checked_against_exchanges_that_are_invalid(
        self, monkeypatch
    ):
        message = problems(
            monkeypatch, LISTENER_EXCHANGES="cinder=", LISTENER_TOPICS="swift=x"
        )

        assert message == (
            "Invalid settings:\n  LISTENER_EXCHANGES: 'cinder=' has an empty exchange"
        )


class TestEachNotificationBoundOnce:
    def test_two_services_on_one_exchange_with_one_topic_are_refused(self, monkeypatch):
        message = problems(
            monkeypatch,
            LISTENER_EXCHANGES="cinder=openstack,glance=openstack",
            LISTENER_TOPICS="cinder=notifications;glance=mine,notifications",
        )

        assert message == (
            "Invalid settings:\n  LISTENER_EXCHANGES, LISTENER_TOPICS: cinder and "
            "glance both consume topic notifications of exchange openstack, so "
            "every notification there would arrive twice; name the topic for one "
            "of them only"
        )

    def test_one_topic_on_two_exchanges_or_two_topics_on_one_are_fine(
        self, monkeypatch
    ):
        settings = settings_from(
            monkeypatch,
            LISTENER_EXCHANGES="nova,neutron,cinder=openstack,glance=openstack",
            LISTENER_TOPICS=(
                "nova=notifications;neutron=notifications;cinder=notifications"
            ),
        )

        assert settings.topics_of("glance") == ["glance_versioned_notifications"]


class TestDescribeInvalidSettings:
    def test_every_problem_is_one_line_naming_its_variable(self, monkeypatch):
        message = problems(
            monkeypatch, LISTENER_HEARTBEAT="often", LISTENER_TOPICS="nova"
        )

        assert message.splitlines() == [
            "Invalid settings:",
            "  LISTENER_TOPICS: 'nova' is not <service>=<topic>[,<topic>...] "
            "(entries are separated by ';')",
            "  LISTENER_HEARTBEAT: Input should be a valid number, unable to parse "
            "string as a number",
        ]
