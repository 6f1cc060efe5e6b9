"""A build in a fork links to the fork: the real book, built as the deploy workflow builds it in
someone/fork (GITHUB_REPOSITORY), with execution off since only links are checked. Every Colab
button, repository button, report-an-error link, twin install cell and twin link must point to
someone/fork."""

import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from chapters import executed  # book/_ext, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[1]
#: github.com addresses the book cites (book/references.bib): other projects, not the book's own
CITED = set(
    re.findall(
        r"https://github\.com/[\w./-]*[\w-]",
        (ROOT / "book" / "references.bib").read_text(),
    )
)
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
SHA = "0123456789abcdef0123456789abcdef01234567"
FORK = "https://github.com/someone/fork"
COLAB = "https://colab.research.google.com/github/someone/fork/blob/colab/book/"


@pytest.fixture(scope="module")
def fork_build(tmp_path_factory):
    """A copy of the book built with the workflow's variables of a push to someone/fork."""
    folder = tmp_path_factory.mktemp("fork")
    shutil.copytree(
        ROOT / "book",
        folder / "book",
        ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"),
    )
    shutil.copytree(
        ROOT / "code", folder / "code", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "_toc.yml", folder)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    env = dict(
        os.environ,
        GITHUB_REPOSITORY="someone/fork",
        GITHUB_SHA=SHA,
        GITHUB_REF_NAME="main",
        GITHUB_SERVER_URL="https://github.com",
    )
    done = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder


def chapters(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "book").glob("*.ipynb"))


def test_every_chapter_has_a_twin(fork_build):
    notebooks = sorted(name.removeprefix("book/") for name in executed(ROOT))
    assert notebooks and chapters(fork_build) == notebooks


def test_colab_and_repository_buttons_point_to_the_fork(fork_build):
    pages = sorted((fork_build / "_build" / "html" / "book").glob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text()
        repository_links = (
            set(re.findall(r'href="(https://github\.com/[^"?]*)', html)) - CITED
        )
        # the repository button, the footer's link to the commit built, the report-an-error link
        assert repository_links == {
            FORK,
            f"{FORK}/commit/{SHA}",
            f"{FORK}/issues/new",
        }, f"{page.name}: {repository_links}"
        colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]*)"', html)
        expected = (
            [COLAB + page.stem + ".ipynb"] if page.stem in chapters(fork_build) else []
        )
        assert colab == expected, page.name


def test_twins_install_from_the_fork_and_link_to_it(fork_build):
    for stem in chapters(fork_build):
        notebook = json.loads((fork_build / "book" / f"{stem}.ipynb").read_text())
        install = "".join(notebook["cells"][1]["source"])
        assert f"install -q git+{FORK}@{SHA}" in install, stem
        assert "MNISTBOOK_BOOK_URL=https://someone.github.io/fork/book/" in install, (
            stem
        )
        text = json.dumps(notebook)
        for cited in CITED:
            text = text.replace(cited, "")
        links = re.findall(
            r"https://(?:colab\.research\.google\.com/github|github\.com)/([\w-]+/[\w-]+)",
            text,
        )
        assert set(links) == {"someone/fork"}, stem


def test_footer_says_what_was_built_and_that_nothing_was_executed(fork_build):
    html = (fork_build / "_build" / "html" / "book" / "scratch.html").read_text()
    footer = re.search(r'<p class="provenance">(.*?)</p>', html)[1]
    assert re.fullmatch(
        rf'built from commit <a href="{FORK}/commit/{SHA}"><code>{SHA[:7]}</code></a> '
        r"on 20\d\d-\d\d-\d\d \d\d:\d\d UTC, torch \S+; this chapter was not executed",
        footer,
    ), footer


def test_every_page_reports_an_error_to_the_fork_with_the_page_and_the_commit(
    fork_build,
):
    for page in sorted((fork_build / "_build" / "html" / "book").glob("*.html")):
        html = page.read_text()
        [link] = re.findall(r'<a class="report-error" href="([^"]+)"', html)
        url = urlsplit(link.replace("&amp;", "&"))
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{FORK}/issues/new", (
            page.name
        )
        query = parse_qs(url.query)
        title = re.search(r"<title>(.*?)(?: &#8212;| —|</title>)", html)[1]
        body = query["body"][0]
        assert f"Page: {unescape(title)}" in body, page.name
        assert f"https://someone.github.io/fork/book/{page.stem}.html" in body, (
            page.name
        )
        assert f"Built from commit {SHA}" in body and "Section: " in body, page.name
        assert query["title"][0].startswith("Error on the page"), page.name
