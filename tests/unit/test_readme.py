"""README's settings table names every setting there is, and only those."""

import re
from pathlib import Path

from osism.settings import SECRETS, Settings

README = Path(__file__).parents[2] / "README.md"


def settings_table() -> str:
    text = README.read_text()
    start = text.index("## Settings")
    return text[start : text.index("\n## ", start + 1)]


def test_every_setting_has_a_row_and_every_row_is_a_setting():
    named = set(re.findall(r"^\| `([A-Z_]+)`", settings_table(), re.MULTILINE))
    named |= set(re.findall(r", `([A-Z_]+)` \|", settings_table()))
    expected = {name.upper() for name in Settings.model_fields}
    expected |= {f"{name.upper()}_FILE" for name in SECRETS}

    assert named == expected
