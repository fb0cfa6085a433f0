"""Log records of the event bridge as caplog's record_tuples shows them."""

import logging
from typing import Tuple

LOGGER = "osism.event_bridge"

LogLine = Tuple[str, int, str]


def debug(message: str) -> LogLine:
    return (LOGGER, logging.DEBUG, message)


def info(message: str) -> LogLine:
    return (LOGGER, logging.INFO, message)


def warning(message: str) -> LogLine:
    return (LOGGER, logging.WARNING, message)


def error(message: str) -> LogLine:
    return (LOGGER, logging.ERROR, message)
