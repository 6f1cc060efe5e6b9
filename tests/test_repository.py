"""Which repository the buttons and the Colab twins point to: _config.yml, then the workflow's
GITHUB_REPOSITORY, then the origin remote, else none."""

import subprocess

import pytest

from repository import (  # book/_ext, on sys.path via conftest
    Repository,
    derive,
    url_of_remote,
)

WORKFLOW = {
    "GITHUB_REPOSITORY": "someone/fork",
    "GITHUB_SHA": "f" * 40,
    "GITHUB_REF_NAME": "main",
}


@pytest.fixture
def checkout(tmp_path):
    """A git checkout with one commit and the origin remote someone/clone."""

    def run(*args):
        subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True
        )

    run("init", "-q", "-b", "main")
    run("remote", "add", "origin", "git@github.com:someone/clone.git")
    run(
        "-c",
        "user.name=a",
        "-c",
        "user.email=a@b",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "one",
    )
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return tmp_path, head


@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:someone/clone.git",
        "ssh://git@github.com/someone/clone.git",
        "https://github.com/someone/clone",
        "https://github.com/someone/clone.git",
        "https://user@github.com/someone/clone.git/",
        "ssh://git@github.com:22/someone/clone",
    ],
)
def test_remote_urls_in_ssh_and_https_form(remote):
    assert url_of_remote(remote) == "https://github.com/someone/clone"


@pytest.mark.parametrize(
    "remote", ["git@gitlab.com:someone/clone.git", "/srv/git/clone.git", ""]
)
def test_remotes_that_are_not_on_github_give_none(remote):
    assert url_of_remote(remote) is None


def test_the_workflow_repository_beats_the_origin_remote(checkout):
    root, _ = checkout
    assert derive("", WORKFLOW, root) == Repository(
        "https://github.com/someone/fork", "f" * 40
    )


def test_the_origin_remote_and_the_commit_checked_out_locally(checkout):
    root, head = checkout
    assert derive("", {}, root) == Repository("https://github.com/someone/clone", head)


def test_config_value_beats_both(checkout):
    root, head = checkout
    repository = derive(
        "https://github.com/owner/book.git", {"GITHUB_REPOSITORY": "someone/fork"}, root
    )
    assert repository == Repository("https://github.com/owner/book", head)


def test_a_config_value_that_is_not_a_github_url_is_an_error(checkout):
    with pytest.raises(
        ValueError,
        match=r"expected https://github.com/<owner>/<name>, got 'gitlab.com/a/b'",
    ):
        derive("gitlab.com/a/b", {}, checkout[0])


def test_no_repository_outside_git_and_any_workflow(tmp_path):
    assert derive("", {}, tmp_path) is None


def test_links_of_a_repository():
    repository = Repository(
        "https://github.com/someone/fork", "abc123", colab_branch="notebooks"
    )
    assert (
        repository.colab_url("book/scratch.ipynb")
        == "https://colab.research.google.com/github/someone/fork/blob/notebooks/book/scratch.ipynb"
    )
    assert repository.pip_url == "git+https://github.com/someone/fork@abc123"
