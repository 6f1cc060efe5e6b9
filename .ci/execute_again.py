"""Execute the chapters a second time, side by side, for the reproducibility test.

The build executes each chapter once; ``tests/test_chapters.py`` compares the numbers of that
execution (its execution cache) with those of this one (``_build/second-execution/``), for
every chapter but the workbook's pages, which print none (``chapters.compared``).
The chapters run in a fresh copy of ``_toc.yml``, ``book/`` and ``code/`` with their own copy
of the MNIST archives, as a reader's clone would: nothing (data, checkpoints) is shared with a
build running at the same time. CI starts it beside the build, at low priority, so it mostly
fills the cores the build leaves idle.

Run from the repository root with the book's environment:
    .venv/bin/python .ci/execute_again.py
"""

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from chapters import compared, execution_order, sphinx_config  # noqa: E402 - the book's one list
from parallel_execution import kernel_manager  # noqa: E402 - the build's kernels

OUTPUT = ROOT / "_build" / "second-execution"
MANAGER = kernel_manager(sphinx_config(ROOT).get("parallel_execution_preload", []))
TIMEOUT = 900  # seconds per cell, as _config.yml's execute.timeout


def copy_of_the_book(folder: Path) -> None:
    for part in ("book", "code"):
        shutil.copytree(
            ROOT / part,
            folder / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"),
        )
    shutil.copy(ROOT / "_toc.yml", folder)
    shutil.copy(ROOT / "_config.yml", folder)
    sys.path.insert(0, str(ROOT / "code"))
    from mnistbook.paths import data_root

    shutil.copytree(
        data_root() / "MNIST" / "raw",
        folder / "data" / "MNIST" / "raw",
        ignore=shutil.ignore_patterns("*-ubyte"),
    )


def same_priority(client: NotebookClient) -> None:
    """Give the kernel this process's priority. A kernel runs in a session other than
    this process's (its own, or that of the warm process it is forked from), and where
    Linux schedules by session (autogroup), a niced parent's priority would not hold
    against the build's kernels: the session's own nice value is set here."""
    pid = getattr(
        client.km.provisioner, "pid", None
    )  # jupyter_client's LocalProvisioner
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(os.nice(0)))
    except OSError:
        pass  # no autogroup scheduling: the kernel inherited the niceness


def execute(folder: Path, name: str) -> float:
    notebook = jupytext.read(folder / f"{name}.md", fmt="md:myst")
    start = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str((folder / name).parent)}},
        kernel_manager_class=MANAGER,
    )
    client.on_notebook_start = lambda notebook: same_priority(client)
    client.execute()
    target = OUTPUT / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return time.perf_counter() - start


def main() -> None:
    shutil.rmtree(OUTPUT, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        copy_of_the_book(folder)
        # the kernels import the copy's package and read the copy's data
        paths = [str(folder / "code"), os.environ.get("PYTHONPATH")]
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        os.environ["MNISTBOOK_DATA"] = str(folder / "data")
        # the longest chapters first, as in the build
        names = execution_order(ROOT, compared(ROOT))
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for name, seconds in zip(
                names, pool.map(lambda n: execute(folder, n), names)
            ):
                print(f"{name} executed again in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
