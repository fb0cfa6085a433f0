import pytest

pytest_plugins = ["pytester", "tests.plugins.time_limit", "tests.harness.fixtures"]


@pytest.fixture
def anyio_backend() -> str:
    # The WebSocket manager is built on asyncio primitives.
    return "asyncio"
