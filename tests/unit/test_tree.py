"""The tree's size bounds (issue 13): one job a module keeps modules small."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_of_the_package_is_over_450_lines():
    over = {
        str(path.relative_to(ROOT)): lines(path)
        for path in (ROOT / "osism").rglob("*.py")
        if lines(path) > 450
    }
    assert over == {}


def test_the_event_bridge_facade_is_at_most_300_lines():
    assert lines(ROOT / "osism" / "services" / "event_bridge.py") <= 300


def test_the_benchmark_is_at_most_900_lines_of_python():
    assert sum(lines(path) for path in (ROOT / "bench").glob("*.py")) <= 900
