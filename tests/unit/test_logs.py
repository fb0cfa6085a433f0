"""Unit tests of osism.logs and of the API's own logging set-up.

pytest keeps handlers of its own on the root logger while a test runs, so
the root logger these tests see is a stand-in.
"""

import json
import logging
import sys
from typing import Any
from unittest.mock import MagicMock

import pytest
from fastapi.testclient import TestClient

from osism import logs
from osism.api import create_app
from osism.services.websocket_manager import WebSocketManager
from osism.settings import Settings
from tests.unit.test_api import FakeBridge


@pytest.fixture
def basic_config(mocker):
    return mocker.patch("osism.logs.logging.basicConfig")


@pytest.fixture
def root(mocker):
    """The root logger as osism.logs sees it: no handlers yet."""
    root = MagicMock(handlers=[])
    mocker.patch("osism.logs.logging.getLogger", return_value=root)
    return root


def record(message: Any, *args: Any, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("osism.test", logging.INFO, "", 0, message, args, exc_info)


def configured_formatter(basic_config) -> logging.Formatter:
    [handler] = basic_config.call_args.kwargs["handlers"]
    assert handler.formatter is not None
    return handler.formatter


class TestConfigure:
    def test_text_lines_at_the_level_in_the_osism_format(self, basic_config):
        logs.configure("info")

        assert basic_config.call_args.kwargs["level"] == "INFO"
        line = configured_formatter(basic_config).format(record("hello %s", "you"))
        assert line.endswith(" INFO    osism.test: hello you")

    def test_json_lines_when_asked(self, basic_config):
        logs.configure("warning", "json")

        line = configured_formatter(basic_config).format(record("hello %s", "you"))
        entry = json.loads(line)
        assert entry["message"] == "hello you"
        assert (entry["level"], entry["logger"]) == ("INFO", "osism.test")
        assert entry["time"].endswith("+00:00")

    def test_an_unconfigured_root_logger_is_configured(self, root, basic_config):
        logs.configure_unless_configured("debug")

        assert basic_config.call_args.kwargs["level"] == "DEBUG"

    def test_an_existing_set_up_is_left_alone(self, root, basic_config):
        root.handlers = [logging.NullHandler()]

        logs.configure_unless_configured("debug")

        basic_config.assert_not_called()


class TestNoForgedLines:
    def test_a_newline_from_outside_is_written_as_an_escape(self):
        forged = "compute.x\n2026-12-06 00:00:00,000 ERROR   osism.api: forged"

        line = logs.TextFormatter().format(record("Published event %s", forged))

        assert "\n" not in line
        assert line.endswith(
            "Published event compute.x\\n2026-12-06 00:00:00,000 "
            "ERROR   osism.api: forged"
        )

    def test_other_control_characters_and_line_separators_too(self):
        line = logs.TextFormatter().format(record("a\rb\x1b[31mc\u2028d\x00"))

        assert line.endswith("a\\rb\\x1b[31mc\\u2028d\\x00")

    def test_a_traceback_keeps_its_lines(self):
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()

        text = logs.TextFormatter().format(record("failed", exc_info=exc_info))

        assert "Traceback (most recent call last):" in text.splitlines()[1]

    def test_json_escapes_them_and_carries_the_traceback(self):
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()

        line = logs.JsonFormatter().format(record("a\nb", exc_info=exc_info))

        assert "\n" not in line
        entry = json.loads(line)
        assert entry["message"] == "a\nb"
        assert entry["exception"].endswith("ValueError: boom")


class TestMaskedTokens:
    def test_a_token_in_a_request_line_is_masked(self):
        mask = logs.MaskTokens()
        line = record(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/v1/events/openstack?node_filters=n1&token=s3cret&x=1",
        )

        assert mask.filter(line) is True
        assert line.getMessage() == (
            '127.0.0.1:5000 - "WebSocket /v1/events/openstack?node_filters=n1'
            '&token=***&x=1" [accepted]'
        )

    @pytest.mark.parametrize(
        "header, shown",
        [
            ("< authorization: Bearer s3cret", "< authorization: Bearer ***"),
            ("< Authorization: s3cret", "< Authorization: ***"),
        ],
    )
    def test_an_authorization_header_logged_at_debug_is_masked(self, header, shown):
        line = record("%s", header)

        logs.MaskTokens().filter(line)

        assert line.getMessage() == shown

    def test_the_arguments_keep_their_shape_for_uvicorns_access_formatter(self):
        """uvicorn's AccessFormatter takes the five arguments apart again."""
        from uvicorn.logging import AccessFormatter

        line = record(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "POST",
            "/v1/events?token=s3cret",
            "1.1",
            401,
        )

        logs.MaskTokens().filter(line)

        assert line.args == (
            "127.0.0.1:5000",
            "POST",
            "/v1/events?token=***",
            "1.1",
            401,
        )
        formatted = AccessFormatter("%(request_line)s %(status_code)s").format(line)
        assert formatted == "POST /v1/events?token=*** HTTP/1.1 401 Unauthorized"

    def test_a_token_in_an_argument_that_is_not_text_is_masked_in_the_line(self):
        line = record("%s", ["/v1/events/openstack?token=s3cret"])

        logs.MaskTokens().filter(line)

        assert "s3cret" not in line.getMessage()

    def test_mapping_arguments_and_a_message_that_is_no_text_are_masked_too(self):
        named = record("%(path)s", {"path": "/v1/events?token=s3cret"})
        thing = record(ValueError("/v1/events?token=s3cret"))

        for line in (named, thing):
            logs.MaskTokens().filter(line)

        assert named.getMessage() == "/v1/events?token=***"
        assert thing.getMessage() == "/v1/events?token=***"

    def test_a_line_without_token_is_left_as_it_is(self):
        line = record("GET %s", "/v1/events/health")

        logs.MaskTokens().filter(line)

        assert (line.msg, line.args) == ("GET %s", ("/v1/events/health",))

    def test_the_server_loggers_get_the_mask_once(self, monkeypatch):
        for name in logs.SERVER_LOGGERS:
            monkeypatch.setattr(logging.getLogger(name), "filters", [])

        logs.protect_server_logs()
        logs.protect_server_logs()

        for name in logs.SERVER_LOGGERS:
            [mask] = logging.getLogger(name).filters
            assert isinstance(mask, logs.MaskTokens)


@pytest.mark.parametrize("set_up_logging, calls", [(True, 1), (False, 0)])
def test_the_api_sets_logging_up_at_start_only_when_asked(
    mocker, set_up_logging, calls
):
    configure = mocker.patch("osism.logs.configure_unless_configured")
    bridge: Any = FakeBridge()
    app = create_app(
        WebSocketManager(send_timeout=5.0, max_pending=10),
        bridge,
        Settings(heartbeat_interval=3600, log_level="warning", log_format="json"),
        set_up_logging=set_up_logging,
    )
    configure.assert_not_called()

    with TestClient(app):
        assert configure.call_args_list == [mocker.call("warning", "json")] * calls
