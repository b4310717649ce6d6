from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from onair.core.settings import SettingError, Settings, documented

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_cli_help_and_readme() -> None:
    help_text = subprocess.run([sys.executable, "-m", "onair.cli", "--help"], capture_output=True, text=True,
                               check=True).stdout
    readme = (ROOT / "README.md").read_text()
    for doc in documented():
        assert doc.env in help_text, f"{doc.env} missing from onair --help"
        assert f"`{doc.env}`" in readme, f"{doc.env} missing from README settings table"


def test_readme_settings_table_is_one_unbroken_table() -> None:
    """A blank line inside a Markdown table ends it: the rows after it would render as raw text."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| env var | default | meaning |") + 2
    rows = [f"| `{d.env}` | `{d.default}` | {d.help} |" for d in documented()]
    assert lines[start:start + len(rows)] == rows
    assert not lines[start + len(rows)].startswith("|"), "README lists a setting that settings.py does not have"


def test_readme_points_nowhere_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):   # Markdown links to files
        if "://" not in target:
            assert (ROOT / target).resolve().is_relative_to(ROOT) and (ROOT / target).exists(), target


def test_env_values_are_parsed_and_typed() -> None:
    s = Settings.from_env({"ONAIR_PORT": "9000", "ONAIR_ALLOW_PRIVATE_URLS": "yes", "ONAIR_DATA_DIR": "/tmp/x"})
    assert s.port == 9000 and s.allow_private_urls is True and s.data_dir == Path("/tmp/x")


@pytest.mark.parametrize(("env", "needle"), [
    ({"ONAIR_STORAGE": "ftp"}, "ONAIR_STORAGE"),
    ({"ONAIR_PORT": "eighty"}, "ONAIR_PORT"),
    ({"ONAIR_PORT": "70000"}, "ONAIR_PORT"),
    ({"ONAIR_DATABASE_URL": "mysql://x"}, "ONAIR_DATABASE_URL"),
    ({"ONAIR_REDIS_URL": "http://x"}, "ONAIR_REDIS_URL"),
])
def test_bad_values_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingError) as err:
        Settings.from_env(env)
    assert needle in str(err.value)


@pytest.mark.parametrize("env", [{"ONAIR_STORAGE": "ftp"}, {"ONAIR_DATABASE_URL": "not a url"}])
def test_cli_reports_bad_setting_in_one_line_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "onair.cli", "migrate"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "ONAIR_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onair: error: ONAIR_"), result.stderr
    assert "Traceback" not in result.stderr
