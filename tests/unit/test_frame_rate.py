"""Unit tests of osism.frame_rate."""

from osism.frame_rate import FrameRate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_twice_the_rate_is_taken_then_frames_are_refused():
    clock = Clock()
    rate = FrameRate(5, clock)

    taken = [rate.take() for _ in range(12)]

    assert taken == [True] * 10 + [False] * 2
    assert rate.refused_in_a_row == 2
    assert not rate.flooding


def test_the_budget_refills_at_the_rate():
    clock = Clock()
    rate = FrameRate(5, clock)
    for _ in range(10):
        rate.take()

    clock.now += 0.4

    assert [rate.take(), rate.take(), rate.take()] == [True, True, False]


def test_a_frame_taken_ends_a_run_of_refusals():
    clock = Clock()
    rate = FrameRate(1, clock)
    rate.take(), rate.take(), rate.take()
    clock.now += 1

    assert rate.take()
    assert rate.refused_in_a_row == 0


def test_a_whole_burst_refused_in_a_row_is_flooding():
    rate = FrameRate(2, Clock())
    for _ in range(4 + 3):
        rate.take()
    assert not rate.flooding

    rate.take()

    assert rate.flooding


def test_a_rate_below_one_still_allows_one_frame():
    rate = FrameRate(0.1, Clock())

    assert rate.burst == 1.0
    assert [rate.take(), rate.take()] == [True, False]
