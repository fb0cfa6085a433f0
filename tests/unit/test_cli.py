"""Unit tests of the `osism` command (osism.cli)."""

import json
import logging

import pytest
from click.testing import CliRunner

from osism.cli import main
from osism.websocket_protocol import BatchingWebSocketProtocol


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def redis_cls(mocker):
    redis_cls = mocker.patch("osism.services.event_bridge.redis.Redis")
    redis_cls.return_value.publish.return_value = 1
    return redis_cls


@pytest.fixture(autouse=True)
def clean_redis_env(monkeypatch):
    for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_CHANNEL", "API_HOST", "API_PORT"):
        monkeypatch.delenv(name, raising=False)


class TestEventsPublish:
    def test_publishes_the_event_on_the_channel(self, runner, redis_cls):
        payload = {"ironic_object.data": {"name": "node1"}}

        result = runner.invoke(
            main,
            [
                "events",
                "publish",
                "baremetal.node.update",
                "--payload",
                json.dumps(payload),
            ],
        )

        assert result.exit_code == 0, result.output
        assert result.output == (
            "Published baremetal.node.update on Redis channel osism:events\n"
        )
        redis_cls.return_value.publish.assert_called_once_with(
            "osism:events",
            json.dumps({"event_type": "baremetal.node.update", "payload": payload}),
        )
        redis_cls.return_value.pubsub.return_value.close.assert_called_once_with()

    def test_the_payload_defaults_to_an_empty_object(self, runner, redis_cls):
        result = runner.invoke(main, ["events", "publish", "x.y"])

        assert result.exit_code == 0, result.output
        redis_cls.return_value.publish.assert_called_once_with(
            "osism:events", '{"event_type": "x.y", "payload": {}}'
        )

    @pytest.mark.parametrize(
        "payload, message",
        [
            ("{", "not valid JSON: Expecting property name enclosed in double quotes"),
            ("[1]", "must be a JSON object, not list"),
        ],
    )
    def test_a_payload_that_is_not_a_json_object_is_a_usage_error(
        self, runner, redis_cls, payload, message
    ):
        result = runner.invoke(main, ["events", "publish", "x", "--payload", payload])

        assert result.exit_code == 2
        assert f"Invalid value for '--payload': {message}" in result.output
        redis_cls.assert_not_called()

    def test_unreachable_redis_fails_with_advice(self, runner, redis_cls, monkeypatch):
        monkeypatch.setenv("REDIS_HOST", "10.1.2.3")
        monkeypatch.setenv("REDIS_PORT", "7000")
        redis_cls.return_value.ping.side_effect = ConnectionError("refused")

        result = runner.invoke(main, ["events", "publish", "x"])

        assert result.exit_code == 1
        assert result.output == (
            "Error: Redis at 10.1.2.3:7000 is not reachable, so the event was not "
            "published. Start Redis (set REDIS_HOST/REDIS_PORT), or POST the event "
            "to the API's /v1/events.\n"
        )

    def test_a_publish_that_fails_twice_is_an_error(self, runner, redis_cls):
        redis_cls.return_value.publish.side_effect = ConnectionError("reset")

        result = runner.invoke(main, ["events", "publish", "x"])

        assert result.exit_code == 1
        assert result.output == "Error: publishing x failed (see log)\n"


class TestServiceApi:
    def test_serves_on_the_settings_address_by_default(
        self, runner, mocker, monkeypatch
    ):
        monkeypatch.setenv("API_HOST", "0.0.0.0")
        monkeypatch.setenv("API_PORT", "9001")
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(main, ["service", "api"])

        assert result.exit_code == 0, result.output
        app = run.call_args.args[0]
        assert app.title == "osism events"
        assert run.call_args.kwargs == {
            "host": "0.0.0.0",
            "port": 9001,
            "log_level": "info",
            "ws_per_message_deflate": False,
            "ws": run.call_args.kwargs["ws"],
        }
        assert issubclass(run.call_args.kwargs["ws"], BatchingWebSocketProtocol)

    def test_options_override_the_settings(self, runner, mocker):
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(
            main,
            [
                "--log-level",
                "warning",
                "service",
                "api",
                "--host",
                "::1",
                "--port",
                "0",
            ],
        )

        assert result.exit_code == 0, result.output
        assert run.call_args.kwargs == {
            "host": "::1",
            "port": 0,
            "log_level": "warning",
            "ws_per_message_deflate": False,
            "ws": run.call_args.kwargs["ws"],
        }
        assert issubclass(run.call_args.kwargs["ws"], BatchingWebSocketProtocol)

    def test_per_message_compression_is_a_setting(self, runner, mocker, monkeypatch):
        monkeypatch.setenv("WEBSOCKET_PER_MESSAGE_DEFLATE", "true")
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(main, ["service", "api"])

        assert result.exit_code == 0, result.output
        assert run.call_args.kwargs["ws_per_message_deflate"] is True

    def test_the_close_timeout_is_a_setting(self, runner, mocker, monkeypatch):
        monkeypatch.setenv("WEBSOCKET_CLOSE_TIMEOUT", "2.5")
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(main, ["service", "api"])

        assert result.exit_code == 0, result.output
        assert run.call_args.kwargs["ws"].answer_close_within == 2.5

    def test_a_port_out_of_range_is_a_usage_error(self, runner, mocker):
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(main, ["service", "api", "--port", "70000"])

        assert result.exit_code == 2
        run.assert_not_called()


class TestServiceListener:
    @pytest.fixture(autouse=True)
    def clean_listener_env(self, monkeypatch):
        for name in ("LISTENER_EXCHANGES", "LISTENER_TOPICS", "LISTENER_HEARTBEAT"):
            monkeypatch.delenv(name, raising=False)

    def test_runs_the_listener_until_it_stops_and_exits_0(
        self, runner, mocker, monkeypatch
    ):
        monkeypatch.setenv("LISTENER_TOPICS", "nova=versioned_notifications")
        serve = mocker.patch("osism.services.listener.serve")

        result = runner.invoke(main, ["service", "listener"])

        assert result.exit_code == 0, result.output
        (settings,), _ = serve.call_args
        assert settings.topics_of("nova") == ["versioned_notifications"]

    @pytest.mark.parametrize(
        "env, problem",
        [
            (
                {"LISTENER_TOPICS": "nova=versioned_notifications;swift=notifications"},
                "LISTENER_TOPICS: swift is not among the services of "
                "LISTENER_EXCHANGES (ironic, nova, neutron, cinder, keystone, "
                "glance)",
            ),
            (
                {"LISTENER_TOPICS": "nova="},
                "LISTENER_TOPICS: 'nova=' has an empty topic",
            ),
            (
                {"LISTENER_TOPICS": "nova:versioned_notifications"},
                "LISTENER_TOPICS: 'nova:versioned_notifications' is not "
                "<service>=<topic>[,<topic>...] (entries are separated by ';')",
            ),
            (
                {"LISTENER_EXCHANGES": "cinder=", "LISTENER_HEARTBEAT": "often"},
                "LISTENER_EXCHANGES: 'cinder=' has an empty exchange\n"
                "  LISTENER_HEARTBEAT: Input should be a valid number, unable to "
                "parse string as a number",
            ),
            (
                {
                    "LISTENER_EXCHANGES": "cinder=openstack,glance=openstack",
                    "LISTENER_TOPICS": "cinder=notifications;glance=notifications",
                },
                "LISTENER_EXCHANGES, LISTENER_TOPICS: cinder and glance both "
                "consume topic notifications of exchange openstack, so every "
                "notification there would arrive twice; name the topic for one "
                "of them only",
            ),
        ],
        ids=["unknown-service", "empty-topic", "malformed", "two-bad", "twice"],
    )
    def test_bad_settings_are_named_and_nothing_starts(
        self, runner, mocker, monkeypatch, env, problem
    ):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        serve = mocker.patch("osism.services.listener.serve")

        result = runner.invoke(main, ["service", "listener"])

        assert result.exit_code == 1
        assert result.output == f"Error: Invalid settings:\n  {problem}\n"
        serve.assert_not_called()

    def test_is_listed_among_the_services(self, runner):
        result = runner.invoke(main, ["service", "--help"])

        assert result.exit_code == 0, result.output
        assert "listener  Carry OpenStack notifications from RabbitMQ into the" in (
            result.output
        )


class TestVersionHelpAndSettings:
    def test_version(self, runner):
        result = runner.invoke(main, ["--version"])

        assert result.exit_code == 0, result.output
        assert result.output == "osism events, version 0.1.0\n"

    def test_help_shows_the_defaults_that_will_be_used(self, runner):
        api_help = runner.invoke(main, ["service", "api", "--help"]).output
        watch_help = runner.invoke(main, ["events", "watch", "--help"]).output

        assert "[default: 127.0.0.1]" in api_help
        assert "[default: 8000;" in api_help
        assert "ws://127.0.0.1:8000/v1/events/openstack" in " ".join(watch_help.split())

    def test_help_shows_a_default_changed_by_the_environment(self, runner, monkeypatch):
        monkeypatch.setenv("API_PORT", "9002")

        result = runner.invoke(main, ["service", "api", "--help"])

        assert "[default: 9002;" in result.output

    def test_watch_connects_to_the_settings_url(self, runner, mocker, monkeypatch):
        monkeypatch.setenv("EVENTS_URL", "ws://events.example:9000/v1/events/openstack")
        watch_forever = mocker.patch("osism.watch.watch_forever")

        result = runner.invoke(main, ["events", "watch", "--service", "nova"])

        assert result.exit_code == 0, result.output
        url, filters = watch_forever.call_args.args
        assert url == "ws://events.example:9000/v1/events/openstack"
        assert filters.service_filters == ["nova"]

    def test_a_bad_setting_is_a_clear_error_without_its_value(
        self, runner, mocker, monkeypatch
    ):
        monkeypatch.setenv("API_PORT", "secret-looking-value")
        run = mocker.patch("uvicorn.run")

        result = runner.invoke(main, ["service", "api"])

        assert result.exit_code == 1
        assert result.output.startswith("Error: Invalid settings:\n  API_PORT: ")
        assert "secret-looking-value" not in result.output
        run.assert_not_called()


class TestLogLevel:
    def test_the_root_logger_gets_the_chosen_level(self, runner, mocker):
        mocker.patch("uvicorn.run")
        basic_config = mocker.patch("osism.logs.logging.basicConfig")

        runner.invoke(main, ["--log-level", "debug", "service", "api"])

        assert basic_config.call_args.kwargs["level"] == "DEBUG"
        assert logging.getLevelName("DEBUG") == logging.DEBUG

    def test_log_level_is_the_default_of_the_option(self, runner, mocker, monkeypatch):
        monkeypatch.setenv("LOG_LEVEL", "warning")
        run = mocker.patch("uvicorn.run")
        basic_config = mocker.patch("osism.logs.logging.basicConfig")

        runner.invoke(main, ["service", "api"])

        assert basic_config.call_args.kwargs["level"] == "WARNING"
        assert run.call_args.kwargs["log_level"] == "warning"
