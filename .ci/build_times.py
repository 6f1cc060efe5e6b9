"""Print how long the book takes to build: clean, again with no change, after a prose-only edit.

Run from the repository root with the book's environment:
    .venv/bin/python .ci/build_times.py
It builds a temporary copy of the repository (sharing the data folder), so the working tree's
own _build is untouched. Figures are printed, never asserted.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def build(folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(JUPYTER_BOOK), "build", str(folder), "-W", "-n", "--keep-going"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "book"
        shutil.copytree(
            ROOT,
            copy,
            ignore=shutil.ignore_patterns(
                "_build",
                ".venv",
                "data",
                "checkpoints",
                ".git",
                "__pycache__",
                ".pytest_cache",
            ),
        )
        os.environ.setdefault("MNISTBOOK_DATA", str(ROOT / "data"))
        clean = build(copy)
        unchanged = build(copy)
        chapter = copy / "book" / "softmax.md"
        chapter.write_text(
            chapter.read_text().replace("Remember this;", "Keep this in mind;", 1)
        )
        prose = build(copy)
    print(f"clean build            {clean:6.0f} s")
    print(f"rebuild, no change     {unchanged:6.1f} s")
    print(f"rebuild, prose edit    {prose:6.1f} s   (book/softmax.md)")


if __name__ == "__main__":
    main()
