"""All the Python of the repository is lint-clean and formatted, with one line width (ruff, as
configured in pyproject.toml): the package, its tests, the book's extensions, the benchmarks and
CI's scripts."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"
PATHS = ["code", "tests", "book/_ext", "benchmarks", ".ci", "classroom"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_ruff_finds_nothing(command):
    assert RUFF.is_file(), "ruff is missing: pip install -r requirements.txt"
    done = subprocess.run(
        [str(RUFF), *command, *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
