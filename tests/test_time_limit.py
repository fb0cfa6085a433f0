"""Proof that every test has a time limit: hanging tests fail, named, in time.

Runs pytest in a subprocess on deliberately hanging tests, with this project's
time-limit plugin loaded as setup.cfg loads it.
"""

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HANGING_TESTS = """
import threading
import time

import anyio
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.timeout(1)
def test_sync_hang():
    threading.Event().wait()


@pytest.mark.timeout(1)
@pytest.mark.anyio
async def test_async_hang():
    await anyio.sleep_forever()


@pytest.mark.timeout(1)
@pytest.mark.anyio
async def test_async_blocking_the_loop():
    time.sleep(60)


@pytest.mark.anyio
async def test_async_within_default_limit():
    await anyio.sleep(0)


@pytest.mark.anyio
async def test_async_raising_its_own_timeout_error_is_not_a_time_limit():
    raise TimeoutError("from the test itself")
"""


@pytest.mark.timeout(60)
def test_hanging_sync_and_async_tests_fail_in_time_with_their_names(
    pytester, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    monkeypatch.setenv("COLUMNS", "300")
    pytester.makepyfile(test_hangs=HANGING_TESTS)

    # The subprocess is killed after 45 s: reaching the assertions at all means
    # every hanging test (sleeping for 60 s or forever) was ended by its limit.
    result = pytester.runpytest_subprocess(
        "-p",
        "anyio",
        "-p",
        "tests.plugins.time_limit",
        "-o",
        "timeout=10",
        "-p",
        "no:cacheprovider",
        timeout=45,
    )

    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*FAILED test_hangs.py::test_sync_hang - Failed: Timeout (>1.0s)*",
            "*FAILED test_hangs.py::test_async_hang - Failed: "
            "test_hangs.py::test_async_hang did not finish within its time limit"
            " of 1 s*",
            "*FAILED test_hangs.py::test_async_blocking_the_loop - Failed: "
            "Timeout (>3.0s)*",
            "*FAILED test_hangs.py::test_async_raising_its_own_timeout_error_is_not_a"
            "_time_limit - TimeoutError: from the test itself*",
        ],
        consecutive=False,
    )
