"""How osism's processes log: on standard error, as text or JSON lines.

The `osism` command sets logging up itself. Under a server that only sets
up its own loggers (``uvicorn osism.api:app``), the API does it at start-up
unless something else already configured the root logger.

No line can be forged from outside: in text, control characters of a
message (a newline in an event type, say) are written as escapes, so one
record is always one line; JSON escapes them anyway. A read token given as
``?token=`` is masked in the server's own request lines.
"""

import json
import logging
import re
from datetime import datetime, timezone

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# C0 control characters and DEL, and the line separators Unicode adds.
_CONTROL = re.compile("[\x00-\x1f\x7f\u2028\u2029]")
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']*")
# The handshake's headers, which uvicorn's WebSocket protocol logs at DEBUG.
_TOKEN_IN_HEADER = re.compile(r"(authorization:\s*(?:\S+\s+)?)\S+", re.IGNORECASE)


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class TextFormatter(logging.Formatter):
    """LOG_FORMAT, with control characters of the message escaped (the
    traceback of an exception, our own, keeps its lines)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str, log_format: str = "text") -> None:
    """Log records of ``level`` and above to standard error, as text or JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def configure_unless_configured(level: str, log_format: str = "text") -> None:
    """:func:`configure`, unless the root logger already has a handler (a
    ``--log-config`` of uvicorn's, an embedding application's)."""
    if not logging.getLogger().handlers:
        configure(level, log_format)


class MaskTokens(logging.Filter):
    """Masks ``token=...`` and ``Authorization`` headers in a record's
    message (uvicorn logs the path and query of every request and WebSocket
    it serves, and at DEBUG the headers of each WebSocket handshake)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The arguments are masked one by one where they are text: uvicorn's
        # access formatter takes its five apart again. What is still there
        # afterwards (a header list at DEBUG) is masked in the whole line.
        if isinstance(record.args, tuple):
            record.args = tuple(
                _mask(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _mask(record.msg)
        message = record.getMessage()
        masked = _mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def _mask(text: str) -> str:
    return _TOKEN_IN_HEADER.sub(r"\1***", _TOKEN_IN_QUERY.sub(r"\1***", text))


# The loggers of the servers the API runs under that log request lines.
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "gunicorn.access")


def protect_server_logs() -> None:
    """Mask tokens in the request lines of uvicorn and gunicorn."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskTokens) for f in logger.filters):
            logger.addFilter(MaskTokens())
