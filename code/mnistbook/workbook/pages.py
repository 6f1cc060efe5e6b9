"""Write the workbook pages ``book/workbook-*.md`` from a short template and the package's source.

Run ``python -m mnistbook.workbook.pages`` after changing this file or the code it shows. The
skeleton of each exercise (signature and docstring, a body that raises NotImplementedError) is
derived with :mod:`ast` from the book's own implementation, and the solution is a
``{literalinclude}`` of that implementation, so neither can drift from the package.
``tests/test_workbook_pages.py`` fails when a committed page differs from what this writes.
"""

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from .. import functional, scratch

BOOK = Path(__file__).resolve().parents[3] / "book"
STUB = '    raise NotImplementedError("your code here")'
FRONT_MATTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
    jupytext_version: 1.19.6
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""
SETUP = "import math\n\nimport torch\nfrom torch import Tensor\n"
#: What the book's solutions use besides the names they define (for pasting a solution in a cell).
SOLUTION_IMPORTS = "from mnistbook import functional as F, validate\n"


@dataclass(frozen=True)
class Page:
    stem: str                        # book/<stem>.md
    title: str
    intro: str                       # one paragraph
    formula: str                     # MyST math
    derived: tuple[str, str]         # (chapter, section title) where the formula is derived
    objects: tuple[str, ...]         # names in `module` the reader writes
    module: object
    check: str                       # the one check cell
    imports: str = ""                # what the page uses besides torch and the check

    @property
    def label(self) -> str:
        return f"{self.stem}-exercise"


PAGES = (
    Page("workbook-loss", "Workbook: the loss and its gradient",
         "The network's loss is the mean cross-entropy of a batch, computed from raw logits; training "
         "needs its gradient with respect to those logits. Write both as functions of the logits "
         "(B, K) and the labels (B,). Both must stay finite for logits as large as ±1000.",
         r"$$L = -\frac{1}{B} \sum_{n=1}^{B} \log \operatorname{softmax}(z_n)_{y_n}, \qquad "
         r"\frac{\partial L}{\partial Z} = \frac{P - Y}{B}$$",
         ("softmax", "The gradient of the loss: p − y"), ("cross_entropy", "cross_entropy_grad"), functional,
         "summary(check_cross_entropy(cross_entropy), check_cross_entropy_grad(cross_entropy_grad))"),
    Page("workbook-softmax-jacobian", "Workbook: the softmax Jacobian",
         "The gradient of the loss goes through the softmax, whose Jacobian says how each probability "
         "moves when one logit moves. Write it for one example: the probabilities p (K,) in, the "
         "matrix ∂p_i/∂z_j (K, K) out.",
         r"$$\frac{\partial p_i}{\partial z_j} = p_i (\delta_{ij} - p_j), \qquad "
         r"J = \operatorname{diag}(p) - p p^\top$$",
         ("softmax", "The Jacobian of the softmax"), ("softmax_jacobian",), functional,
         "check_softmax_jacobian(softmax_jacobian)"),
    Page("workbook-linear", "Workbook: the linear layer",
         "A linear layer maps a batch X (B, in) to Z = X Wᵀ + b with W of shape (out, in), as "
         "`torch.nn.Linear` does. Its forward pass keeps what the backward pass needs; its backward "
         "pass turns the gradient G of the loss with respect to Z into the gradients with respect to "
         "X, W and b.",
         r"$$Z = X W^\top + \mathbf{1} b^\top, \qquad \frac{\partial L}{\partial X} = G W, \quad "
         r"\frac{\partial L}{\partial W} = G^\top X, \quad \frac{\partial L}{\partial b} = G^\top \mathbf{1}$$",
         ("backprop", "A linear layer"), ("Linear",), scratch, "check_linear(Linear)"),
    Page("workbook-relu", "Workbook: the ReLU",
         "The ReLU keeps positive inputs and zeroes the rest. Its backward pass lets the gradient "
         "through where the unit was active and stops it elsewhere; at exactly 0 the derivative is "
         "taken as 0, as in torch. Each layer needs its own ReLU, because it remembers its input.",
         r"$$h = \max(z, 0), \qquad \frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} "
         r"\odot \mathbb{1}[z > 0]$$",
         ("backprop", "A ReLU"), ("ReLU",), scratch, "check_relu(ReLU)"),
    Page("workbook-net", "Workbook: the network",
         "The network chains the layers, 784 → 120 → 256 → 10 with a ReLU after each hidden layer. "
         "Its backward pass runs from the output back, handing each layer the gradient the layer "
         "above returned, and collects the parameter gradients in `grads` under the names of "
         "`parameters`. The cell below imports the book's `Linear` and `ReLU`; paste yours from the "
         "earlier pages in their place to build on your own.",
         r"$$Z_\ell = H_{\ell-1} W_\ell^\top + \mathbf{1} b_\ell^\top, \quad H_\ell = \max(Z_\ell, 0), "
         r"\qquad G_{\ell-1} = \big(G_\ell W_\ell\big) \odot \mathbb{1}[Z_{\ell-1} > 0]$$",
         ("backprop", "The whole network"), ("Net",), scratch, "check_net(Net)",
         "from mnistbook.scratch import Linear, ReLU\n"),
    Page("workbook-sgd", "Workbook: SGD with momentum",
         "The optimiser keeps a momentum buffer per parameter and moves each parameter against it. "
         "It must change the parameter tensors in place: the layers hold those very tensors, and a "
         "new tensor would never reach them.",
         r"$$v \leftarrow \mu\, v + g \;\; (v = g \text{ on the first step}), \qquad "
         r"\theta \leftarrow \theta - \eta\, v$$",
         ("pytorch", "A loss function and an optimiser"), ("SGD",), scratch, "check_sgd(SGD)"),
    Page("workbook-training", "Workbook: the training step",
         "One training step on a mini-batch: forward, loss, backward, update, and the batch's loss "
         "as a number for the log. `make_scratch_step(net, criterion, optimizer)` returns a function "
         "`step(images, labels)` that does all that and returns the loss as a Python float. The check runs your step once against the book's, then trains "
         "the network with the book's recipe on MNIST and measures its test accuracy. The cell "
         "below imports the book's `Net`, `SGD` and `CrossEntropyLoss`; paste yours in their place "
         "to train your own.",
         r"$$v \leftarrow \mu\, v + \nabla_\theta L(\theta; "
         r"x_\text{batch}, y_\text{batch}), \qquad \theta \leftarrow \theta - \eta\, v$$",
         ("training-scratch", "One training step, by hand"), ("make_scratch_step",), scratch,
         "check_training(make_scratch_step, Net, SGD, CrossEntropyLoss)",
         "from mnistbook.scratch import CrossEntropyLoss, Net, SGD\n"),
)


def _definitions(module) -> tuple[str, dict[str, ast.AST]]:
    source = inspect.getsource(module)
    return source, {node.name: node for node in ast.parse(source).body
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _lines(source: str, first: int, last: int) -> list[str]:
    return source.splitlines()[first - 1:last]


def _stub(source: str, node: ast.FunctionDef) -> list[str]:
    """The signature and docstring of ``node``, then a body that raises NotImplementedError."""
    body = node.body[0]
    has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str)
    head = _lines(source, node.lineno, body.lineno - 1)
    doc = _lines(source, body.lineno, body.end_lineno) if has_doc else []
    indent = " " * node.col_offset
    return head + doc + [indent + STUB]


def skeleton(module, name: str) -> str:
    """The exercise for ``module.name``: every function body (``__call__`` excepted) a stub."""
    source, definitions = _definitions(module)
    node = definitions[name]
    if isinstance(node, ast.FunctionDef):
        return "\n".join(_stub(source, node))
    first = node.body[0]
    lines = _lines(source, node.lineno, first.lineno - 1)
    if isinstance(first, ast.Expr):
        lines += _lines(source, first.lineno, first.end_lineno)
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            lines.append("")
            lines += (_lines(source, item.lineno, item.end_lineno) if item.name == "__call__"
                      else _stub(source, item))
    return "\n".join(lines)


def helpers(module, name: str) -> list[tuple[object, str]]:
    """(module, name) of the package functions ``module.name`` calls, callees first: with it, the solution.

    Classes are left out: each is the exercise of a page of its own, imported where it is used.
    """
    found: list[tuple[object, str]] = []
    seen = {(module, name)}

    def visit(mod, obj_name: str) -> None:
        _, definitions = _definitions(mod)
        for node in ast.walk(definitions[obj_name]):
            if isinstance(node, ast.Name) and isinstance(definitions.get(node.id), ast.FunctionDef):
                target = (mod, node.id)  # a function of the same module
            elif (mod is scratch and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "F"):
                target = (functional, node.attr)  # scratch calls the book's formulas as F.<name>
            else:
                continue
            if target not in seen:
                seen.add(target)
                visit(*target)
                found.append(target)

    visit(module, name)
    return found


def _include(module, name: str) -> str:
    path = Path(inspect.getsourcefile(module)).relative_to(BOOK.parent)
    return f"```{{literalinclude}} ../{path.as_posix()}\n:language: python\n:pyobject: {name}\n```"


def solution_code(page: Page) -> str:
    """The book's solution as one cell: what the solution dropdown shows, ready to run."""
    parts = [SOLUTION_IMPORTS]
    for module, name in [h for obj in page.objects for h in helpers(page.module, obj)] + \
            [(page.module, obj) for obj in page.objects]:
        source, definitions = _definitions(module)
        node = definitions[name]
        parts.append("\n".join(_lines(source, node.lineno, node.end_lineno)))
    return "\n\n\n".join(dict.fromkeys(parts)) + "\n"


def _cell(code: str) -> str:
    return f"```{{code-cell}} ipython3\n{code.rstrip()}\n```"


def render(page: Page) -> str:
    chapter, section = page.derived
    names = " and ".join(page.objects)  # no backticks: a fence's info string may not hold any
    checks = sorted(set(re.findall(r"\b(check_\w+|summary)\(", page.check)))  # what the check cell calls
    includes = [(m, n) for obj in page.objects for m, n in helpers(page.module, obj)] + \
               [(page.module, obj) for obj in page.objects]
    blocks = [
        FRONT_MATTER,
        f"# {page.title}\n\n{page.intro}\n\n{page.formula}\n\n"
        f"The formula is derived in {{doc}}`{chapter}`, section “{section}”.",
        _cell(SETUP + page.imports + f"\nfrom mnistbook.workbook import {', '.join(checks)}"),
        f"````{{exercise}} Write {names}\n:label: {page.label}\n:nonumber:\n\n"
        f"Replace each `raise NotImplementedError(\"your code here\")` in the cell below with your code, "
        f"run it, then run the check under it. The check tries your code on random and extreme inputs "
        f"and says what is wrong, if anything, and where the book explains it.\n````",
        _cell(skeleton(page.module, page.objects[0]) if len(page.objects) == 1
              else "\n\n\n".join(skeleton(page.module, name) for name in page.objects)),
        _cell(page.check),
        f"````{{solution}} {page.label}\n:class: dropdown\n\n"
        "The book's own code" + (", with the functions it calls" if len(includes) > len(page.objects) else "")
        + ":\n\n" + "\n\n".join(_include(m, n) for m, n in includes) + "\n````",
    ]
    return "\n\n".join(blocks).replace(FRONT_MATTER + "\n\n", FRONT_MATTER + "\n") + "\n"


def write(book: Path = BOOK) -> list[Path]:
    """Write every workbook page; return those whose text changed."""
    changed = []
    for page in PAGES:
        path, text = book / f"{page.stem}.md", render(page)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in write():
        print("wrote", path)
