"""Unit tests of osism.memory."""

import ctypes
import logging

from osism import memory


def test_on_glibc_the_threshold_is_fixed(mocker):
    calls = []
    real = ctypes.CDLL

    def cdll(name):
        libc = real(name)
        mallopt = libc.mallopt

        class Recorded:
            def mallopt(self, parameter, value):
                calls.append((parameter, value))
                return mallopt(parameter, value)

        return Recorded()

    mocker.patch.object(memory.ctypes, "CDLL", side_effect=cdll)

    assert memory.return_large_blocks_to_the_kernel() is True
    assert calls == [(memory.M_MMAP_THRESHOLD, 128 * 1024)]


def test_without_glibc_nothing_changes_and_it_says_so(mocker, caplog):
    caplog.set_level(logging.DEBUG, logger="osism.api")
    mocker.patch.object(memory.ctypes, "CDLL", side_effect=OSError("no libc"))

    assert memory.return_large_blocks_to_the_kernel() is False
    assert "No mallopt here (no libc)" in caplog.text


def test_a_libc_without_mallopt_changes_nothing(mocker):
    mocker.patch.object(memory.ctypes, "CDLL", return_value=object())

    assert memory.return_large_blocks_to_the_kernel() is False
