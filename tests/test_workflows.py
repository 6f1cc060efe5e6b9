"""The GitHub Actions workflows, checked statically (they cannot run here): actionlint and zizmor
(offline) find nothing, every action is pinned to a commit with its version beside it, the same
release in every workflow, every workflow that builds runs CI's one path (`bash .ci/run`), and the
deploy workflow publishes what the build writes where the book's links expect it."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repository import Repository  # book/_ext, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"


def tool(name: str) -> str:
    """The linter installed beside this Python (requirements.txt), else one on PATH."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.is_file() else shutil.which(name)
    assert found, f"{name} is missing: pip install -r requirements.txt"
    return found


def test_there_is_a_deploy_workflow():
    assert DEPLOY in WORKFLOWS


@pytest.mark.parametrize(
    "command",
    [["actionlint", "-no-color"], ["zizmor", "--offline", "--no-progress"]],
    ids=lambda c: c[0],
)
def test_linters_find_nothing(command):
    done = subprocess.run(
        [tool(command[0]), *command[1:], *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_the_version_beside_it(workflow):
    uses = re.findall(r"uses:\s*(\S+)(.*)", workflow.read_text())
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w-]+/[\w./-]+@[0-9a-f]{40}", action), (
            f"{action} is not pinned to a commit"
        )
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), (
            f"{action} lacks its version comment"
        )


def test_every_action_is_pinned_to_the_same_release_everywhere():
    pins: dict[str, set[str]] = {}
    for workflow in WORKFLOWS:
        for action, commit in re.findall(
            r"uses:\s*([\w-]+/[\w./-]+)@([0-9a-f]{40})", workflow.read_text()
        ):
            pins.setdefault(action, set()).add(commit)
    assert all(len(commits) == 1 for commits in pins.values()), pins


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_that_builds_runs_ci_s_one_path(workflow):
    text = workflow.read_text()
    assert "run: bash .ci/run" in text
    assert (
        "jupyter-book build" not in text and "pytest" not in text
    )  # no second path beside it


def test_the_build_matrix_covers_the_promised_pythons_and_colab_s():
    matrix = yaml.safe_load(DEPLOY.read_text())["jobs"]["build"]["strategy"]["matrix"][
        "python"
    ]
    project = (ROOT / "pyproject.toml").read_text()
    oldest = re.search(r'requires-python = ">=(\d+\.\d+)"', project)[1]
    assert matrix[0] == oldest and "3.12" in matrix  # Colab's Python
    assert f"--python-version {oldest}" in (ROOT / ".ci" / "lock").read_text()
    assert all(
        f"Python {v}" in (ROOT / "README.md").read_text()
        for v in (matrix[0], matrix[-1])
    )


def test_deploy_publishes_the_pdf_and_the_twins_where_the_book_links_them():
    text = DEPLOY.read_text()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    pdf = (
        Path(config["latex"]["latex_documents"]["targetname"]).with_suffix(".pdf").name
    )
    assert (
        "path: _build/html" in text
    )  # where the HTML build that follows the PDF copies it
    assert f'href="../{pdf}"' in (ROOT / "book" / "index.md").read_text()
    assert f"HEAD:refs/heads/{Repository('', '').colab_branch}" in text
    assert "path: book/*.ipynb" in text


def test_deploy_jobs_have_least_permissions():
    workflow = yaml.safe_load(DEPLOY.read_text())
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["colab"]["permissions"] == {"contents": "write"}
    for name in ("deploy", "colab"):
        assert (
            "pull_request" in jobs[name]["if"] and "refs/heads/main" in jobs[name]["if"]
        )
