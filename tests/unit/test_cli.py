"""Unit tests of the `osism` command (osism.cli)."""

import json
import logging
import socket

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


def published(redis_cls) -> list:
    """The messages published on the mocked Redis, decoded."""
    return [
        (c.args[0], json.loads(c.args[1]))
        for c in redis_cls.return_value.publish.call_args_list
    ]


class TestEventsPublish:
    def test_publishes_the_event_with_an_id_and_time_on_the_channel(
        self, runner, redis_cls
    ):
        payload = {"ironic_object.data": {"name": "node1"}}

        result = runner.invoke(
            main,
            [
                "events",
                "publish",
                "baremetal.node.update",
                "--payload",
                json.dumps(payload),
                "--publisher-id",
                "ironic-conductor.h1",
            ],
        )

        assert result.exit_code == 0, result.output
        [(channel, message)] = published(redis_cls)
        assert channel == "osism:events"
        assert message["event_type"] == "baremetal.node.update"
        assert message["payload"] == payload
        assert message["publisher_id"] == "ironic-conductor.h1"
        assert message["timestamp"].endswith("Z")
        assert result.output == (
            "Published baremetal.node.update on Redis channel osism:events "
            f"(id {message['id']})\n"
        )
        # Kept in the history too, where every API process finds it.
        redis_cls.return_value.xadd.assert_called_once()
        redis_cls.return_value.pubsub.return_value.close.assert_called_once_with()

    def test_the_payload_defaults_to_an_empty_object(self, runner, redis_cls):
        result = runner.invoke(main, ["events", "publish", "x.y"])

        assert result.exit_code == 0, result.output
        [(_, message)] = published(redis_cls)
        assert message["payload"] == {}

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

    @pytest.mark.parametrize("event_type", ["a\nb", "a..b", "<x>", "x" * 256])
    def test_an_event_type_that_is_not_a_dotted_name_is_a_usage_error(
        self, runner, redis_cls, event_type
    ):
        result = runner.invoke(main, ["events", "publish", event_type])

        assert result.exit_code == 2
        assert "must be a dotted name" in result.output
        redis_cls.assert_not_called()

    def test_unreachable_redis_fails_after_the_timeout_with_advice(
        self, runner, redis_cls, monkeypatch
    ):
        monkeypatch.setenv("REDIS_HOST", "10.1.2.3")
        monkeypatch.setenv("REDIS_PORT", "7000")
        redis_cls.return_value.ping.side_effect = ConnectionError("refused")

        result = runner.invoke(main, ["events", "publish", "x", "--timeout", "0.3"])

        assert result.exit_code == 1
        assert result.output == (
            "Error: Redis at 10.1.2.3:7000 did not take the event within 0.3 s, "
            "so it was not published. Start Redis (set REDIS_HOST/REDIS_PORT), or "
            "post the event to an API (--url).\n"
        )
        # Tried more than once in the time it had.
        assert redis_cls.return_value.ping.call_count > 1
        redis_cls.return_value.publish.assert_not_called()

    def test_redis_that_comes_back_within_the_timeout_takes_the_event(
        self, runner, redis_cls
    ):
        redis_cls.return_value.ping.side_effect = [ConnectionError("refused")] * 2 + [
            True
        ] * 10

        result = runner.invoke(main, ["events", "publish", "x", "--timeout", "5"])

        assert result.exit_code == 0, result.output
        assert len(published(redis_cls)) == 1

    def test_a_publish_that_keeps_failing_is_an_error(self, runner, redis_cls):
        redis_cls.return_value.publish.side_effect = ConnectionError("reset")

        result = runner.invoke(main, ["events", "publish", "x", "--timeout", "0.3"])

        assert result.exit_code == 1
        assert result.output.startswith("Error: Redis at redis:6379 did not take")


class TestEventsPublishToAnApi:
    """--url: posted to an API, with its write token."""

    @pytest.fixture
    def api(self):
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append((self.path, self.headers.get("Authorization"), body))
                status = 401 if self.headers.get("Authorization") != "Bearer w" else 202
                answer = {"id": body.get("message_id"), "detail": "no"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}", seen
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()

    def test_the_event_is_posted_with_the_token(self, runner, api, monkeypatch):
        url, seen = api
        monkeypatch.setenv("EVENTS_WRITE_TOKEN", "w")

        result = runner.invoke(
            main, ["events", "publish", "x.y", "--url", url, "--publisher-id", "p.h"]
        )

        assert result.exit_code == 0, result.output
        [(path, authorization, body)] = seen
        assert (path, authorization) == ("/v1/events", "Bearer w")
        assert (body["event_type"], body["publisher_id"]) == ("x.y", "p.h")
        assert result.output == f"Posted x.y to {url} (id {body['message_id']})\n"

    def test_a_refusal_of_the_api_is_an_error_naming_it(self, runner, api):
        url, _ = api

        result = runner.invoke(
            main, ["events", "publish", "x.y", "--url", url, "--token", "bad"]
        )

        assert result.exit_code == 1
        assert result.output.startswith("Error: the API refused the event (401): ")

    def test_an_api_that_is_not_there_is_an_error(self, runner):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{closed.getsockname()[1]}"

            result = runner.invoke(main, ["events", "publish", "x.y", "--url", url])

        assert result.exit_code == 1
        assert result.output.startswith(f"Error: the API at {url} did not take")


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
