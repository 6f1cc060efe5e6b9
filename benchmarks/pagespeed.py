"""Lighthouse scores of the built book beside the same pages built with Jupyter Book's defaults.

A benchmark, not a test: the figures depend on the machine. Both sites are served from localhost
with gzip and measured in the same run, with Lighthouse 12.2.3 (from npm, into a scratch folder;
newer releases refuse this machine's Node) driving the system chromium, mobile and desktop presets.

The reference is a copy of the repository built with the book's speed switch off (``fast_book:
false``, book/_ext/speed.py): MathJax typesets in the browser, served from the site as before,
and the theme's default assets load. It reuses the execution cache, so nothing re-executes.

    python benchmarks/pagespeed.py [--pages book/softmax.html ...] [--runs 3]   (after a build)
    python benchmarks/pagespeed.py --smoke    (one page, one run, no reference: that it works)

Each figure is the median of ``--runs`` Lighthouse runs (scores vary from run to run on a busy
machine).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "pagespeed"
LIGHTHOUSE = "lighthouse@12.2.3"
PAGES = ["book/softmax.html", "book/backprop.html", "book/pytorch.html"]
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
CHROME_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync "
    "--disable-dev-shm-usage"
)
COMPRESSED = {".html", ".css", ".js", ".svg", ".json", ".txt", ".ttf", ".map", ".ico"}
MATHJAX_FILES = [
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
]


def lighthouse_cli() -> Path:
    """Lighthouse from npm, installed once into _build/pagespeed/npm."""
    prefix = WORK / "npm"
    cli = prefix / "node_modules" / ".bin" / "lighthouse"
    if not cli.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "i",
                "-E",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                LIGHTHOUSE,
            ],
            check=True,
        )
    return cli


def reference_site() -> Path:
    """The book built with Jupyter Book's defaults (MathJax served from the site), cached."""
    copy = WORK / "reference"
    html = copy / "_build" / "html"
    if html.is_dir():
        return html
    if copy.exists():
        shutil.rmtree(copy)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    config = (copy / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r"^\s*favicon:.*\n", "", config, flags=re.M)
    config = config.replace(
        "    fast_book: true\n",
        "    fast_book: false\n    mathjax_path: mathjax/tex-mml-chtml.js\n",
        1,
    )
    (copy / "_config.yml").write_text(config, encoding="utf-8")
    shutil.copytree(
        ROOT / "_build" / ".jupyter_cache", copy / "_build" / ".jupyter_cache"
    )
    if (ROOT / "data").exists():
        (copy / "data").symlink_to(ROOT / "data")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run(
        [str(jupyter_book), "build", str(copy)],
        check=True,
        env={
            **os.environ,
            "PYTHONPATH": f"{copy / 'code'}:{os.environ.get('PYTHONPATH', '')}",
        },
    )
    _copy_mathjax(html / "_static" / "mathjax")
    return html


def _copy_mathjax(target: Path) -> None:
    """MathJax 3 from the django-static-mathjax wheel, as the book served it before."""
    import mathjax

    source = Path(mathjax.__file__).parent / "static" / "mathjax"
    for item in MATHJAX_FILES:
        src, dst = source / "es5" / item, target / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, gzip-compressed for clients that accept it (as any real host does)."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if (
            "gzip" not in self.headers.get("Accept-Encoding", "")
            or path.suffix not in COMPRESSED
            or not path.is_file()
        ):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), 6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args) -> None:
        pass


def serve(directory: Path) -> str:
    handler = functools.partial(GzipHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/"


def measure(cli: Path, url: str, preset: str, out: Path) -> dict:
    chromium = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    command = [
        str(cli),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={CHROME_FLAGS}",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": chromium})
    report = json.loads(out.read_text(encoding="utf-8"))
    audits = report["audits"]
    return {
        **{c: round(100 * report["categories"][c]["score"]) for c in CATEGORIES},
        "FCP s": audits["first-contentful-paint"]["numericValue"] / 1000,
        "LCP s": audits["largest-contentful-paint"]["numericValue"] / 1000,
        "TBT ms": audits["total-blocking-time"]["numericValue"],
        "KB": audits["total-byte-weight"]["numericValue"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="+", default=PAGES)
    parser.add_argument(
        "--runs", type=int, default=3, help="Lighthouse runs per cell; medians shown"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="one page, mobile, one run, no reference"
    )
    args = parser.parse_args()
    book = ROOT / "_build" / "html"
    if not (book / "book" / "index.html").is_file():
        sys.exit(f"no built book in {book}: run the README's build command first")
    cli = lighthouse_cli()
    sites = {"book": serve(book)}
    if args.smoke:
        args.pages, args.runs, presets = args.pages[:1], 1, ("mobile",)
    else:
        sites["JB defaults"], presets = serve(reference_site()), ("mobile", "desktop")
    reports = WORK / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    columns = [
        "performance",
        "accessibility",
        "best-practices",
        "seo",
        "FCP s",
        "LCP s",
        "TBT ms",
        "KB",
    ]
    print("| page | preset | site | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---:|" * len(columns))
    lcp = {}
    for page in args.pages:
        for preset in presets:
            for name, base in sites.items():
                runs = [
                    measure(
                        cli,
                        base + page,
                        preset,
                        reports
                        / f"{Path(page).stem}-{preset}-{name.replace(' ', '-')}-{run}.json",
                    )
                    for run in range(args.runs)
                ]
                row = {
                    key: statistics.median(run[key] for run in runs) for key in runs[0]
                }
                lcp[page, preset, name] = row["LCP s"]
                cells = [
                    f"{row[c]:.2f}" if c.endswith(" s") else f"{row[c]:.0f}"
                    for c in columns
                ]
                print(
                    f"| {page} | {preset} | {name} | " + " | ".join(cells) + " |",
                    flush=True,
                )
    print()
    for page in args.pages if len(sites) > 1 else []:
        ratio = lcp[page, "mobile", "JB defaults"] / lcp[page, "mobile", "book"]
        print(
            f"{page}: mobile LCP {ratio:.1f}x faster than with Jupyter Book's defaults"
        )


if __name__ == "__main__":
    main()
