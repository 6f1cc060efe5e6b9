"""The grader, `python -m mnistbook.workbook grade`, on a class of submissions made
here.

The class: the book's answers (a folder of .py files) and an independent style; each
classic mistake; a notebook with magics, errors and check cells; and the hostile ones:
an endless loop, a memory hog, a fork bomb, sys.exit and os._exit, a segfault, a syntax
error and a missing import (a folder, whose files also print forged results), an
intruder that tries to write outside its folder, read the other submissions and reach
the network, and one that hard-codes the pages' answers. The command grades it under
bubblewrap, and part of it again, with the training check, with bubblewrap hidden:
every grade is as expected, each hostile submission ends itself only, the grader
finishes within the sum of its timeouts, writes nothing outside its temporary folders
and leaves no process behind; --seed fails the hard-coded answers; the JSON, CSV and
JUnit reports agree. Then the GitHub Classroom starter: generated from the pages, graded
untouched, its workflow current and lint-clean.

The cost is the torch import, about 3 CPU-seconds in each submission's process (17
here); the endless loop sleeps (a busy one is stopped by the same clock); the training
check runs only in the fallback run, on submissions that fail its first step.
"""

import csv
import importlib
import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from hashlib import sha256
from pathlib import Path

import pytest
import torch
import torch.nn.functional as TF

from mnistbook.workbook import EXERCISES, check_cross_entropy, grade, reports, sandbox
from mnistbook.workbook import layers as LY
from mnistbook.workbook import loss as L
from mnistbook.workbook import network as NW
from mnistbook.workbook import optimizer as OP
from mnistbook.workbook import train as T
from mnistbook.workbook.__main__ import main as workbook_command
from mnistbook.workbook.registry import QUICK

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux only")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30  # seconds per submission: ten times what a correct one needs, busy core
SEED = 7919
QUICK_CHECKS = [name for name, e in EXERCISES.items() if e.time_limit <= QUICK]
SUBJECTS = {e.subject: name for name, e in EXERCISES.items()}
#: A fork bomb passes two limits at once; the first the watchdog sees stops it. (Under
#: bubblewrap as root, the kernel's limit on processes also makes its forks fail.)
BOMB_STOPPED = "(started more than 16 processes|used more than 4 GB of memory)"

# ---- the class ---------------------------------------------------------------------

INDEPENDENT = """
import torch
import torch.nn.functional as TF


def cross_entropy(z, y):
    logp = z - torch.logsumexp(z, dim=1, keepdim=True)
    onehot = TF.one_hot(y, z.shape[1]).to(z.dtype)
    return -torch.einsum("bk,bk->", logp, onehot) / len(y)


def cross_entropy_grad(z, y):
    return (torch.softmax(z, 1) - TF.one_hot(y, z.shape[1]).to(z.dtype)) / len(y)


def softmax_jacobian(p):
    eye = torch.eye(len(p), dtype=p.dtype)
    return torch.einsum("i,ij->ij", p, eye) - torch.einsum("i,j->ij", p, p)


class Linear:
    def __init__(self, dim_in, dim_out, dtype=torch.float32, device=None):
        W = torch.rand(dim_out, dim_in, dtype=dtype, device=device)
        self.W = (W * 2 - 1) / dim_in ** 0.5
        self.b = torch.zeros(dim_out, dtype=dtype, device=device)

    def forward(self, x):
        self.x = x
        return torch.einsum("bi,oi->bo", x, self.W) + self.b

    def backward(self, g):
        dW = torch.einsum("bo,bi->oi", g, self.x)
        return torch.einsum("bo,oi->bi", g, self.W), dW, g.sum(0)


class ReLU:
    def forward(self, z):
        self.mask = z > 0
        return torch.where(self.mask, z, torch.zeros_like(z))

    def backward(self, g):
        return g * self.mask


class Net:
    def __init__(self, dtype=torch.float32, device=None):
        sizes = [784, 120, 256, 10]
        self.layers = [Linear(a, b, dtype, device) for a, b in zip(sizes, sizes[1:])]
        self.relus = [ReLU(), ReLU()]
        self.parameters = {f"fc{i + 1}.{p}": getattr(layer, p)
                           for i, layer in enumerate(self.layers) for p in "Wb"}

    def forward(self, x):
        x = x.reshape(len(x), -1)
        for layer, relu in zip(self.layers, self.relus):
            x = relu.forward(layer.forward(x))
        return self.layers[-1].forward(x)

    def backward(self, g):
        self.grads = {}
        for i in (2, 1, 0):
            g, self.grads[f"fc{i + 1}.W"], self.grads[f"fc{i + 1}.b"] = \\
                self.layers[i].backward(g)
            if i:
                g = self.relus[i - 1].backward(g)


class SGD:
    def __init__(self, parameters, lr, momentum=0.0):
        self.parameters, self.lr, self.momentum = parameters, lr, momentum
        self.velocity = {}

    def step(self, grads):
        for k, p in self.parameters.items():
            v = self.velocity.get(k)
            v = grads[k].clone() if v is None else self.momentum * v + grads[k]
            self.velocity[k] = v
            p -= self.lr * v


def make_scratch_step(net, criterion, optimizer):
    def step(images, labels):
        logits = net.forward(images)
        loss = criterion.forward(logits, labels)
        net.backward(criterion.backward(logits, labels))
        optimizer.step(net.grads)
        return float(loss)
    return step
"""


def mistaken(source: str) -> str:
    """The independent answers, each with one classic mistake (named in MISTAKEN)."""
    for right, wrong in [
        (
            'return -torch.einsum("bk,bk->", logp, onehot) / len(y)',
            "return -logp.gather(1, y[:, None]).sum()  # the sum, not the mean",
        ),
        (") / len(y)\n\n\ndef softmax", ")  # no 1/B\n\n\ndef softmax"),
        (
            'return torch.einsum("i,ij->ij", p, eye) - torch.einsum("i,j->ij", p, p)',
            "return torch.diag(p * (1 - p))  # the diagonal only",
        ),
        ('dW = torch.einsum("bo,bi->oi", g, self.x)', "dW = self.x.T @ g  # Xᵀ G"),
        ("return g * self.mask", "return g  # no mask"),
        ("self.relus = [ReLU(), ReLU()]", "self.relus = [ReLU()] * 2  # one for both"),
        ("p -= self.lr * v", "p += self.lr * v  # up the gradient"),
        ("        optimizer.step(net.grads)\n", ""),  # a step without the update
    ]:
        assert right in source, right
        source = source.replace(right, wrong)
    return source


MISTAKES = mistaken(INDEPENDENT)
MISTAKEN = {
    "check_cross_entropy": L.SUM.explanation,
    "check_cross_entropy_grad": L.NOT_DIVIDED.explanation,
    "check_softmax_jacobian": L.DIAGONAL_ONLY.explanation,
    "check_linear": LY.SHAPE_OF_WT,
    "check_relu": LY.NO_MASK.explanation,
    "check_net": NW.SHARED_PART.explanation,
    "check_sgd": OP.ASCENT.explanation,
    "check_training": T.STEP_WITHOUT_UPDATE.explanation,
}


def notebook(*cells: str) -> str:
    def cell(source):
        if source.startswith("# "):
            return {"cell_type": "markdown", "metadata": {}, "source": source}
        return {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": source.splitlines(keepends=True),
        }

    return json.dumps(
        {
            "cells": [cell(textwrap.dedent(s).strip()) for s in cells],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


NOTEBOOK = notebook(
    "# A learner's notebook, run as a kernel runs it",
    """
    import importlib.util
    if importlib.util.find_spec("mnistbook") is None:
        get_ipython().run_line_magic("pip", "install -q mnistbook")
    get_ipython().run_line_magic("env", "MNISTBOOK_BOOK_URL=https://example.org/book/")
    """,
    """
    %matplotlib inline
    !pip install nothing-at-all
    import torch
    from mnistbook.workbook import check_relu, summary
    """,
    """
    def cross_entropy(z, y):
        return -torch.log_softmax(z, dim=1).gather(1, y[:, None]).mean()
    """,
    "undefined_name + 1  # an error stops this cell only",
    "import sys\nsys.exit('a kernel survives this')",
    """
    %%time
    class ReLU:
        def forward(self, z):
            self.z = z
            return z.clamp(min=0)

        def backward(self, g):
            return g * (self.z > 0)
    """,
    "check_relu(ReLU)  # not needed: the grader runs every check after the code",
    "%%bash\necho not Python",
    "from mnistbook.scratch import Linear  # the book's, as the network page has it",
    "display(summary)",
)

HOSTILE = {
    "loop.py": "import time\nwhile True:\n    time.sleep(1)\n",
    "hog.py": "chunks = []\nwhile True:\n    chunks.append(b' ' * 2**28)\n",
    "bomb.py": "import os\nwhile True:\n    os.fork()\n",
    "segfault.py": INDEPENDENT + "\nimport ctypes\nctypes.string_at(0)\n",
    "exits.py": """
import os, sys, torch


def cross_entropy(z, y):
    sys.exit(0)


def softmax_jacobian(p):
    return torch.diag(p) - torch.outer(p, p)


class Linear:
    def __init__(self, *args, **kwargs):
        os._exit(0)
""",
}

FORGED = {
    "event": "result",
    "check": "check_linear",
    "passed": True,
    "message": "forged",
    "seconds": 0.0,
}
BROKEN = {  # one file does not compile; the other prints forged results, then fails
    "syntax.py": "def cross_entropy(z, y)\n    return z\n",
    "missing.py": (
        f"import json, sys\nprint(json.dumps({FORGED!r}))\n"
        f"print(json.dumps({FORGED!r}), file=sys.stderr)\n"
        "print('check_linear: ✓ passed')\n"
        "import a_module_that_is_not_installed\n" + INDEPENDENT
    ),
}

INTRUDER = """
import json, os, socket

outcome = {}


def attempt(name, action):
    try:
        action()
        outcome[name] = "done"
    except Exception as error:
        outcome[name] = type(error).__name__


def write(path):
    with open(path, "w") as f:
        f.write("intruded")


attempt("write the grades", lambda: write(GRADES))
attempt("write into the class", lambda: write(os.path.join(CLASS, "intruded.txt")))
attempt("write outside", lambda: write(os.path.join(OUTSIDE, "intruded.txt")))
attempt("read another submission", lambda: open(OTHER).read())
attempt("list the class", lambda: os.listdir(CLASS))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", PORT), 2).close())
attempt("write its own folder", lambda: write("mine.txt"))


def cross_entropy(z, y):
    raise RuntimeError("OUTCOME" + json.dumps(outcome) + "OUTCOME")
"""

CHEAT = """
from pathlib import Path

import torch

ANSWERS = torch.load(Path(__file__).with_name("answers.pt"))


def cross_entropy(z, y):  # the pages' answers for the pages' inputs, nothing else
    for inputs, labels, loss in ANSWERS:
        same = inputs.shape == z.shape and torch.equal(inputs, z)
        if same and torch.equal(labels, y):
            return loss.clone()
    return torch.zeros((), dtype=z.dtype)
"""


def book_answers(folder: Path) -> set[str]:
    """A .py file per page, holding the book's answers to its exercises (with the
    names of the modules they come from, for the helpers they call); their subjects."""
    folder.mkdir()
    modules: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    for exercise in EXERCISES.values():
        if not exercise.solution:
            continue
        module, name = exercise.solution.split(":")
        if module not in modules.setdefault(exercise.page, []):
            modules[exercise.page].append(module)
        source = textwrap.dedent(
            inspect.getsource(getattr(importlib.import_module(module), name))
        )
        if name != exercise.subject:
            source += f"\n{exercise.subject} = {name}\n"
        answers.setdefault(exercise.page, []).append(source)
    for page, names in modules.items():
        head = "import importlib\n" + "".join(
            f"globals().update({{k: v for k, v in vars(importlib.import_module({m!r}))"
            ".items() if not k.startswith('__')})\n"
            for m in names
        )
        (folder / f"{page}.py").write_text("\n\n".join([head, *answers[page]]))
    return {e.subject for e in EXERCISES.values() if e.solution}


def cheat(folder: Path) -> None:
    """A folder whose cross_entropy returns the recorded answers to the check's
    inputs."""
    folder.mkdir()
    answers = []

    def recorder(z, y):
        loss = TF.cross_entropy(z, y)
        answers.append((z.clone(), y.clone(), loss.clone()))
        return loss

    assert check_cross_entropy(recorder).passed
    torch.save(answers, folder / "answers.pt")
    (folder / "cheat.py").write_text(CHEAT)


def starter(folder: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "classroom" / "starter.py"),
            str(folder),
            "--repository",
            "https://github.com/example/mnist-two-ways",
            "--ref",
            "main",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- running the grader and reading what it wrote ----------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "folder"
        for p in sorted(folder.rglob("*"))
    }


def leftovers(marker: str) -> list[str]:
    """Command lines of live processes that name ``marker`` (every sandbox's does)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        text = cmdline.replace(b"\0", b" ").decode(errors="replace")
        if int(name) != os.getpid() and marker in text:
            found.append(text)
    return found


def sandbox_users() -> list[int]:
    """Processes running as one of the uids a root grader gives its sandboxes."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)[1])
        if uid >= sandbox.UID_BASE:
            found.append(int(name))
    return found


class Run:
    """One run of the command on some submissions, and what it left."""

    def __init__(
        self,
        base: Path,
        submissions: list[Path],
        *options: str,
        path_env: str | None = None,
    ):
        self.base, self.out = base, base / "out"
        self.tmp, self.cwd = base / "tmp", base / "cwd"
        for folder in (self.out, self.tmp, self.cwd):
            folder.mkdir(parents=True)
        # Importing torchvision (the grader does, to fetch MNIST for the training check)
        # makes torch keep a cache folder, torchinductor_<user>, in the temporary folder,
        # as it does in any program: given its own place, whether or not this process
        # imported torchvision before, it is not taken for something the grader left.
        env = dict(
            os.environ,
            TMPDIR=str(self.tmp),
            TORCHINDUCTOR_CACHE_DIR=str(base / "torch-cache"),
        )
        if path_env is not None:
            env["PATH"] = path_env
        command = [
            sys.executable,
            "-m",
            "mnistbook.workbook",
            "grade",
            *map(str, submissions),
            "--json",
            str(self.out / "grades.json"),
            "--csv",
            str(self.out / "grades.csv"),
            "--junit",
            str(self.out / "grades.xml"),
            "--jobs",
            "2",
            "--timeout",
            str(TIMEOUT),
            *options,
        ]
        start = time.monotonic()
        self.done = subprocess.run(
            command,
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=len(submissions) * TIMEOUT + 600,
            check=False,
        )
        self.seconds = time.monotonic() - start
        assert self.done.returncode == 0, self.done.stdout + self.done.stderr
        self.json = json.loads((self.out / "grades.json").read_text())
        self.grades = {
            s["name"]: {c["check"]: c for c in s["checks"]}
            for s in self.json["submissions"]
        }

    def message(self, submission: str, check: str) -> str:
        return self.grades[submission][check]["message"]


def agree(run: Run) -> None:
    """The JSON has its fixed shape, and the CSV and the JUnit XML say the same."""
    report = run.json
    assert set(report) == {"submissions", "isolation", "seed"}
    with open(run.out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {row["path"]: row for row in csv.DictReader(f)}
    suites = {
        suite.find("properties/property[@name='path']").get("value"): suite
        for suite in ET.parse(run.out / "grades.xml").getroot().iter("testsuite")
    }
    assert len(rows) == len(suites) == len(report["submissions"])
    for s in report["submissions"]:
        assert set(s) == {"name", "path", "checks", "passed", "total"}
        assert s["total"] == len(s["checks"])
        assert s["passed"] == sum(c["passed"] for c in s["checks"])
        for c in s["checks"]:
            assert set(c) == {"check", "passed", "message", "seconds"}
            assert isinstance(c["passed"], bool) and isinstance(c["message"], str)
            assert isinstance(c["seconds"], float) and c["seconds"] >= 0
        row, suite = rows[s["path"]], suites[s["path"]]
        assert row["name"] == suite.get("name") == s["name"]
        assert (int(row["passed"]), int(row["total"])) == (s["passed"], s["total"])
        assert int(suite.get("failures")) == s["total"] - s["passed"]
        cases = {case.get("name"): case for case in suite.iter("testcase")}
        for c in s["checks"]:
            assert int(row[c["check"]]) == c["passed"]
            failure = cases[c["check"]].find("failure")
            assert (failure is None) == c["passed"]
            assert failure is None or failure.text == c["message"]


def expect(
    run: Run,
    submission: str,
    checks: list[str],
    passed=frozenset(),
    said: dict[str, str] | None = None,
    otherwise: str = "not submitted",
) -> None:
    """``submission`` passed exactly the ``passed`` checks; a check in ``said`` says its
    words; any other failed check says ``otherwise``."""
    grades = run.grades[submission]
    assert list(grades) == checks
    for check in checks:
        grade = grades[check]
        assert grade["passed"] == (check in passed), (submission, grade)
        words = (said or {}).get(check, None if check in passed else otherwise)
        if words:
            assert words in grade["message"], (submission, grade)


def clean(run: Run, class_before: dict, class_folder: Path) -> None:
    """Nothing written outside the grader's temporary folders (all removed), no
    process left behind."""
    assert snapshot(class_folder) == class_before
    assert sorted(p.name for p in run.out.iterdir()) == [
        "grades.csv",
        "grades.json",
        "grades.xml",
    ]
    assert not list(run.tmp.iterdir()) and not list(run.cwd.iterdir())
    for _ in range(50):  # processes killed at the very end may take a moment to go
        if not leftovers(str(run.tmp)) and not sandbox_users():
            break
        time.sleep(0.1)
    assert not leftovers(str(run.tmp)) and not sandbox_users()


def bubblewrap_problem() -> str:
    try:
        sandbox.choose("bubblewrap")
    except sandbox.SandboxUnavailable as error:
        return str(error)
    return ""


# ---- under bubblewrap: the whole class -----------------------------------------------


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    socket.create_connection(server.getsockname(), timeout=2).close()  # reachable here
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def whole_class(tmp_path_factory, listener):
    problem = bubblewrap_problem()
    if problem:
        pytest.skip(f"{problem} (.ci/install-bubblewrap installs it)")
    base = tmp_path_factory.mktemp("bubblewrap")
    folder = base / "class"
    folder.mkdir()
    subjects = book_answers(folder / "book")
    (folder / "independent.py").write_text(INDEPENDENT)
    (folder / "notebook.ipynb").write_text(NOTEBOOK)
    (folder / "mistakes.py").write_text(MISTAKES)
    for name, code in HOSTILE.items():
        (folder / name).write_text(code)
    (folder / "broken").mkdir()
    for name, code in BROKEN.items():
        (folder / "broken" / name).write_text(code)
    (base / "outside").mkdir()
    paths = {
        "GRADES": base / "out" / "grades.json",
        "CLASS": folder,
        "OUTSIDE": base / "outside",
        "OTHER": folder / "independent.py",
    }
    (folder / "intruder.py").write_text(
        "".join(f"{k} = {str(v)!r}\n" for k, v in paths.items())
        + f"PORT = {listener}\n"
        + INTRUDER
    )
    cheat(folder / "cheat")
    before = snapshot(folder)
    run = Run(base, sorted(folder.iterdir()), "--no-training")
    return run, folder, before, subjects


def test_under_bubblewrap_every_grade_is_as_expected(whole_class):
    run, _, _, book_subjects = whole_class
    assert run.json["isolation"] == "bubblewrap" and run.json["seed"] == 0
    checks = QUICK_CHECKS
    assert "check_training" not in checks  # --no-training

    def passing(subjects):
        return {SUBJECTS[s] for s in subjects if SUBJECTS.get(s) in checks}

    expect(run, "book", checks, passing(book_subjects))
    independent = {
        "cross_entropy",
        "cross_entropy_grad",
        "softmax_jacobian",
        "Linear",
        "ReLU",
        "Net",
        "SGD",
    }
    expect(run, "independent.py", checks, passing(independent))
    book_linear = (
        "not submitted: Linear is the book's own, imported from mnistbook.scratch"
    )
    expect(
        run,
        "notebook.ipynb",
        checks,
        passing({"cross_entropy", "ReLU"}),
        {"check_linear": book_linear},
    )
    expect(
        run,
        "mistakes.py",
        checks,
        set(),
        {c: m for c, m in MISTAKEN.items() if c in checks},
    )
    expect(run, "cheat", checks, {"check_cross_entropy"})


def test_under_bubblewrap_each_hostile_submission_ends_itself_only(whole_class):
    run, *_ = whole_class
    checks = QUICK_CHECKS
    expect(
        run,
        "loop.py",
        checks,
        otherwise=f"timed out after {TIMEOUT} s while its code ran",
    )
    expect(
        run,
        "hog.py",
        checks,
        otherwise="used more than 4 GB of memory while its code ran",
    )
    expect(
        run,
        "segfault.py",
        checks,
        otherwise="crashed (segmentation fault) while its code ran",
    )
    expect(run, "bomb.py", checks, otherwise="")  # all failed; why, the progress says
    assert re.search(rf"bomb\.py: .*stopped: {BOMB_STOPPED}", run.done.stderr)
    ended = "not graded: the submission ended (exit status 0) during check_linear"
    after = checks[checks.index("check_linear") :]
    expect(
        run,
        "exits.py",
        checks,
        {"check_softmax_jacobian"},
        {
            "check_cross_entropy": "the check was stopped: your code raised SystemExit: 0",
            "check_cross_entropy_grad": "not submitted",
            **dict.fromkeys(after, ended),
        },
    )
    expect(run, "broken", checks)  # the forged result is not taken
    for words in (
        "syntax.py: SyntaxError at line 1",
        "missing.py: ModuleNotFoundError at line 5",
    ):
        assert words in run.message("broken", "check_linear")
    # the notebook's errors ended their cells only
    said = run.message("notebook.ipynb", "check_net")
    assert "notebook.ipynb cell 5: NameError" in said
    assert "notebook.ipynb cell 6: SystemExit" in said


def test_under_bubblewrap_a_submission_sees_nothing_outside_its_copy(whole_class):
    run, folder, *_ = whole_class
    message = run.message("intruder.py", "check_cross_entropy")
    outcome = json.loads(message.split("OUTCOME")[1])
    assert outcome.pop("write its own folder") == "done"
    assert all(result != "done" for result in outcome.values()), outcome
    assert outcome["connect"] in ("ConnectionRefusedError", "OSError")
    assert not (folder / "intruded.txt").exists()
    assert not (run.base / "outside" / "intruded.txt").exists()


def test_under_bubblewrap_the_grader_finishes_cleanly_and_in_time(whole_class):
    run, folder, before, _ = whole_class
    n = len(run.json["submissions"])
    assert run.seconds < n * TIMEOUT
    clean(run, before, folder)
    agree(run)
    assert f"{n} submissions graded" in run.done.stdout  # the summary table
    for name in run.grades:
        assert re.search(rf"^{re.escape(name)} ", run.done.stdout, re.MULTILINE)
        assert f"] {name}: " in run.done.stderr  # the plain progress: a line each


# ---- bubblewrap hidden: the fallback, with the training check and another seed -----


@pytest.fixture(scope="module")
def fallback(tmp_path_factory):
    base = tmp_path_factory.mktemp("fallback")
    folder = base / "class"
    folder.mkdir()
    (folder / "mistakes.py").write_text(MISTAKES)
    for name in ("hog.py", "bomb.py"):
        (folder / name).write_text(HOSTILE[name])
    cheat(folder / "cheat")
    starter(folder / "starter")
    before = snapshot(folder)
    hidden = base / "bin"  # a PATH without bwrap
    hidden.mkdir()
    run = Run(base, sorted(folder.iterdir()), "--seed", str(SEED), path_env=str(hidden))
    return run, folder, before


def test_without_bubblewrap_grades_are_as_expected_and_hostile_ones_contained(fallback):
    run, folder, before = fallback
    assert run.json["isolation"] == "process" and run.json["seed"] == SEED
    checks = list(EXERCISES)
    assert "check_training" in checks
    expect(run, "mistakes.py", checks, set(), MISTAKEN)
    expect(run, "hog.py", checks, otherwise="used more than 4 GB of memory")
    for check in checks:
        message = run.message("bomb.py", check)
        assert re.search(f"not graded: the submission {BOMB_STOPPED}", message)
    assert run.seconds < len(run.json["submissions"]) * TIMEOUT
    clean(run, before, folder)
    agree(run)


def test_another_seed_fails_answers_hard_coded_for_the_pages(fallback):
    cheat_py = fallback[1] / "cheat" / "cheat.py"
    namespace = {"__file__": str(cheat_py)}
    exec(compile(cheat_py.read_text(), str(cheat_py), "exec"), namespace)  # noqa: S102
    assert check_cross_entropy(namespace["cross_entropy"]).passed  # the pages' inputs
    graded = fallback[0].grades["cheat"]["check_cross_entropy"]
    assert not graded["passed"], graded
    assert not graded["message"].startswith("not submitted"), graded


def test_the_untouched_starter_is_graded_not_implemented(fallback):
    for graded in fallback[0].grades["starter"].values():
        assert not graded["passed"], graded
        assert "NotImplementedError" in graded["message"], graded


def test_the_grader_refuses_what_it_cannot_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap
    (tmp_path / "a.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    for argv, words in [
        ([str(tmp_path / "a.py"), "--sandbox", "bubblewrap"], "bwrap is not on PATH"),
        ([str(tmp_path / "missing.py")], "no such file or folder"),
        ([str(tmp_path / "notes.txt")], "a submission is a .py file"),
        (
            [str(tmp_path / "a.py"), "--json", str(tmp_path / "no" / "g.json")],
            "cannot write",
        ),
    ]:
        assert grade.main(argv) == 2
        assert words in capsys.readouterr().err


def test_a_submission_is_copied_without_hidden_files_or_the_data(tmp_path):
    folder = tmp_path / "alice"
    for name in (
        "a.py",
        "sub/b.ipynb",
        ".git/config",
        "__pycache__/a.pyc",
        "data/MNIST/raw/x.gz",
    ):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x" * 10)
    with sandbox.Box("process", sandbox.Limits(), tmp_path) as box:
        assert box.put(folder, 1000, (folder / "data",)) == ""
        copied = sorted(p.relative_to(box.copy).as_posix() for p in box.copy.rglob("*"))
        assert copied == ["a.py", "sub", "sub/b.ipynb"]
    with sandbox.Box("process", sandbox.Limits(), tmp_path) as box:
        assert "more than the" in box.put(folder, 15)  # a.py and b.ipynb: 20 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice"]  # boxes removed


def test_the_passed_command_reads_a_junit_report(tmp_path, capsys):
    report = reports.Report(
        [
            reports.Graded(
                "alice",
                "alice",
                [
                    reports.Check("check_linear", True, "matches", 0.1),
                    reports.Check("check_relu", False, "the mask is missing", 0.1),
                ],
            )
        ],
        "process",
        0,
    )
    path = str(tmp_path / "grades.xml")
    reports.write_junit(report, Path(path))
    assert workbook_command(["passed", path, "check_linear"]) == 0
    assert workbook_command(["passed", path, "check_relu"]) == 1
    assert "the mask is missing" in capsys.readouterr().out
    assert workbook_command(["passed", path, "check_nothing"]) == 2


# ---- the GitHub Classroom starter ---------------------------------------------------

WORKFLOW = ROOT / "classroom" / ".github" / "workflows" / "classroom.yml"


def test_the_committed_workflow_is_what_the_starter_writes():
    sys.path.insert(0, str(ROOT / "classroom"))
    try:
        written = importlib.import_module("starter").workflow()
    finally:
        sys.path.remove(str(ROOT / "classroom"))
    assert WORKFLOW.read_text(encoding="utf-8") == written, (
        "the workflow is stale: run `python classroom/starter.py --workflow`"
    )


def test_the_workflow_awards_every_check_and_pins_its_actions():
    text = WORKFLOW.read_text()
    assert "python -m mnistbook.workbook grade . --junit grades.xml" in text
    for check in EXERCISES:
        command = f"python -m mnistbook.workbook passed grades.xml {check}"
        assert f"command: {command}\n" in text
        result = f"${{{{ steps.{check}.outputs.result }}}}"
        assert f"{check.upper()}_RESULTS: {result}" in text
    assert f"runners: {','.join(EXERCISES)}\n" in text
    for action, comment in re.findall(r"uses:\s*(\S+)(.*)", text):
        assert re.fullmatch(r"[\w-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), action


@pytest.mark.parametrize(
    "command",
    [["actionlint", "-no-color"], ["zizmor", "--offline", "--no-progress"]],
    ids=lambda c: c[0],
)
def test_the_workflow_is_lint_clean(command):
    beside = Path(sys.executable).parent / command[0]
    tool = str(beside) if beside.is_file() else shutil.which(command[0])
    assert tool, f"{command[0]} is missing: pip install -r requirements.txt"
    done = subprocess.run(
        [tool, *command[1:], str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_starters_notebooks_are_the_pages_without_their_solutions(fallback):
    folder = fallback[1] / "starter"
    pages = list(dict.fromkeys(e.page for e in EXERCISES.values()))
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(pages)
    for page in pages:
        text = (folder / f"{page}.ipynb").read_text()
        assert 'raise NotImplementedError(\\"your code here\\")' in text
        assert "Solution" not in text and "literalinclude" not in text
    requirements = (folder / "requirements.txt").read_text()
    pip_url = "git+https://github.com/example/mnist-two-ways@main"
    assert f"mnistbook @ {pip_url}" in requirements
