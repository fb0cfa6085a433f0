"""Unit tests of osism.logs and of the API's own logging set-up.

pytest keeps handlers of its own on the root logger while a test runs, so
the root logger these tests see is a stand-in.
"""

import logging
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


def test_configure_logs_at_the_level_in_the_osism_format(basic_config):
    logs.configure("info")

    basic_config.assert_called_once_with(level="INFO", format=logs.LOG_FORMAT)
    record = logging.LogRecord("osism.test", logging.INFO, "", 0, "hello", (), None)
    line = logging.Formatter(logs.LOG_FORMAT).format(record)
    assert line.endswith(" INFO    osism.test: hello")


def test_an_unconfigured_root_logger_is_configured(root, basic_config):
    logs.configure_unless_configured("debug")

    basic_config.assert_called_once_with(level="DEBUG", format=logs.LOG_FORMAT)


def test_an_existing_set_up_is_left_alone(root, basic_config):
    root.handlers = [logging.NullHandler()]

    logs.configure_unless_configured("debug")

    basic_config.assert_not_called()


@pytest.mark.parametrize("set_up_logging, calls", [(True, 1), (False, 0)])
def test_the_api_sets_logging_up_at_start_only_when_asked(
    mocker, set_up_logging, calls
):
    configure = mocker.patch("osism.logs.configure_unless_configured")
    bridge: Any = FakeBridge()
    app = create_app(
        WebSocketManager(send_timeout=5.0, max_pending=10),
        bridge,
        Settings(heartbeat_interval=3600, log_level="warning"),
        set_up_logging=set_up_logging,
    )
    configure.assert_not_called()

    with TestClient(app):
        assert configure.call_args_list == [mocker.call("warning")] * calls
