"""Unit tests of osism.services.retry."""

from itertools import islice

import pytest

from osism.services.retry import Backoff


def first_delays(backoff: Backoff, count: int):
    return list(islice(backoff.delays(), count))


def test_delays_double_from_the_first_up_to_the_cap():
    assert first_delays(Backoff(1.0, 5.0), 6) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_another_factor_grows_by_it():
    assert first_delays(Backoff(0.5, 10.0, factor=3.0), 4) == [0.5, 1.5, 4.5, 10.0]


def test_a_factor_of_one_keeps_the_first_delay():
    assert first_delays(Backoff(2.0, 2.0, factor=1.0), 3) == [2.0, 2.0, 2.0]


def test_every_run_of_failures_starts_again_from_the_first_delay():
    backoff = Backoff(1.0, 8.0)
    run = backoff.delays()
    next(run), next(run)

    assert next(backoff.delays()) == 1.0
    assert next(run) == 4.0


@pytest.mark.parametrize(
    "first, cap, factor, message",
    [
        (0, 1, 2, "the first delay must be positive, got 0"),
        (2, 1, 2, r"the cap \(1\) is below the first delay \(2\)"),
        (1, 2, 0.5, "the factor must be at least 1, got 0.5"),
    ],
)
def test_nonsense_is_refused(first, cap, factor, message):
    with pytest.raises(ValueError, match=message):
        Backoff(first, cap, factor)


def test_repr_names_the_policy():
    assert repr(Backoff(1.0, 5.0)) == "Backoff(first=1, cap=5, factor=2)"
