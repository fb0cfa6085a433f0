"""How osism's processes log: one format, on standard error.

The `osism` command sets logging up itself. Under a server that only sets
up its own loggers (``uvicorn osism.api:app``), the API does it at start-up
unless something else already configured the root logger.
"""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure(level: str) -> None:
    """Log records of ``level`` and above to standard error."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


def configure_unless_configured(level: str) -> None:
    """:func:`configure`, unless the root logger already has a handler (a
    ``--log-config`` of uvicorn's, an embedding application's)."""
    if not logging.getLogger().handlers:
        configure(level)
