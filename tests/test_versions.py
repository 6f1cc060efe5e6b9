"""The one table of library releases the extensions were written for (book/_ext/_versions.py)
holds the releases requirements.txt pins, on every Python the lock covers; and every extension
checks the distributions it reaches into."""

import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from sphinx.errors import ExtensionError

from _versions import USES, WRITTEN_FOR, require  # book/_ext, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = ROOT / "book" / "_ext"


def pins() -> dict[str, list[str]]:
    """Distribution -> every version requirements.txt pins for it (one per Python marker)."""
    found: dict[str, list[str]] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            found.setdefault(match[1].lower().replace("_", "-"), []).append(match[2])
    return found


@pytest.mark.parametrize("distribution", WRITTEN_FOR)
def test_the_table_holds_the_locked_releases(distribution):
    locked = pins().get(distribution)
    assert locked, f"{distribution} is not in requirements.txt"
    for version in locked:
        assert version in SpecifierSet(WRITTEN_FOR[distribution]), (
            distribution,
            version,
        )


def test_every_extension_that_reaches_into_a_library_checks_it():
    for path in EXTENSIONS.glob("*.py"):
        text = path.read_text()
        calls = re.findall(r'require\("(\w+)"\)', text)
        if path.stem in USES:
            assert calls == [path.stem], path.name
        else:
            assert not calls, path.name
    for extension, used in USES.items():
        assert (EXTENSIONS / f"{extension}.py").is_file() and set(used) <= set(
            WRITTEN_FOR
        )


def test_an_extension_refuses_a_release_it_was_not_written_for(monkeypatch):
    require("provenance")  # installed: passes
    monkeypatch.setitem(WRITTEN_FOR, "myst-nb", "<1")
    with pytest.raises(
        ExtensionError, match=r"provenance\.py was written for myst-nb <1 \(found \d"
    ):
        require("provenance")


PROMISED = (
    "3.11",
    "3.12",
    "3.13",
)  # pyproject.toml's requires-python, as the workflow tests it


@pytest.mark.parametrize("python", PROMISED)
def test_the_lock_pins_the_whole_stack_for_every_promised_python(python):
    """On each promised Python the lock's markers leave exactly one pin of every package that
    applies, and the extensions' releases among them: a stack that builds there."""
    from packaging.markers import Marker

    environment = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    pinned: dict[str, list[str]] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*(.*))?$", line)
        if match and (match[3] is None or Marker(match[3]).evaluate(environment)):
            pinned.setdefault(match[1].lower().replace("_", "-"), []).append(match[2])
    assert all(len(versions) == 1 for versions in pinned.values()), pinned
    for distribution, specifier in WRITTEN_FOR.items():
        assert pinned[distribution][0] in SpecifierSet(specifier), (
            python,
            distribution,
        )
    for direct in (
        "torch",
        "torchvision",
        "jupyter-book",
        "safetensors",
        "zizmor",
        "ruff",
    ):
        assert direct in pinned, (python, direct)
    project = (ROOT / "pyproject.toml").read_text()
    assert f'requires-python = ">={PROMISED[0]}"' in project
