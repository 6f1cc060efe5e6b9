"""The book's figures. Each function returns a matplotlib Figure, which a notebook shows once."""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def _figure(width: float, height: float) -> Figure:
    """A new figure, closed in pyplot so that only the returned object is displayed.

    Its margin is transparent (the plotting areas stay white), so the figure sits on the page's
    own background in light mode and on the theme's light card in dark mode.
    """
    fig = plt.figure(figsize=(width, height), layout="constrained", dpi=150)
    fig.patch.set_alpha(0.0)
    plt.close(fig)
    return fig


def image_grid(images: torch.Tensor, titles: list[str], columns: int = 8) -> Figure:
    """Digits in [-1, 1] (as normalised for the network) with a caption under each."""
    n = len(images)
    rows = math.ceil(n / columns)
    fig = _figure(1.3 * min(n, columns), 1.55 * rows)
    for i, (image, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(rows, min(n, columns), i + 1)
        ax.imshow(
            image.detach().cpu().reshape(28, 28) / 2 + 0.5,
            cmap="gray_r",
            vmin=0,
            vmax=1,
        )
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel(title, fontsize=9)
    return fig


def running_mean(values, window: int) -> np.ndarray:
    """Mean of each consecutive block of ``window`` values (the running loss the original
    notebook prints)."""
    values = np.asarray(values, dtype=float)
    blocks = len(values) // window
    return values[: blocks * window].reshape(blocks, window).mean(axis=1)


def loss_curves(
    curves: dict[str, list[float]],
    window: int = 500,
    title: str = "",
    logy: bool = False,
    styles: dict | None = None,
) -> Figure:
    """Per-step losses averaged over blocks of ``window`` steps, one line per run."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    for name, losses in curves.items():
        y = (
            running_mean(losses, window)
            if len(losses) >= window
            else np.asarray(losses, dtype=float)
        )
        step = window if len(losses) >= window else 1
        x = (np.arange(len(y)) + 1) * step
        ax.plot(x, y, label=name, **(styles or {}).get(name, {}))
    ax.set_xlabel("mini-batch (step)")
    ax.set_ylabel(
        f"training loss (mean of {window} steps)" if window > 1 else "training loss"
    )
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return fig


def confusion(matrix: torch.Tensor, classes=range(10)) -> Figure:
    """The confusion matrix, rows = true class, columns = prediction, counts in the cells."""
    m = matrix.cpu().numpy()
    fig = _figure(5.6, 4.8)
    ax = fig.add_subplot()
    # a log scale lets the few mistakes show beside the large diagonal
    shown = np.log1p(m)
    image = ax.imshow(shown, cmap="Blues")
    for (i, j), count in np.ndenumerate(m):
        if count:
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shown[i, j] > shown.max() / 2 else "black",
            )
    ax.set_xticks(range(len(m)), classes), ax.set_yticks(range(len(m)), classes)
    ax.set_xlabel("predicted class"), ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return fig


def heatmap(
    matrix: torch.Tensor, title: str, xlabel: str = "j", ylabel: str = "i"
) -> Figure:
    """A square matrix on a symmetric diverging colour scale (e.g. a Jacobian)."""
    m = matrix.detach().cpu().numpy()
    limit = np.abs(m).max() or 1.0
    fig = _figure(4.8, 4.0)
    ax = fig.add_subplot()
    image = ax.imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_xticks(range(m.shape[1])), ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return fig


def series(
    curves: dict[str, list[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = True,
    hlines: dict[str, float] | None = None,
) -> Figure:
    """Several sequences against their index, optionally with labelled horizontal lines."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    for name, level in (hlines or {}).items():
        ax.axhline(level, color="grey", linestyle="--", linewidth=1)
        ax.annotate(
            name,
            (0.01, level),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
            color="grey",
        )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return fig


def computational_graph() -> Figure:
    """The network's forward pass top to bottom (blue), and what the backward pass sends up (red)."""
    nodes = [
        ("X", "(B, 784)"),
        ("Z₁ = X W₁ᵀ + b₁", "(B, 120)"),
        ("H₁ = ReLU(Z₁)", "(B, 120)"),
        ("Z₂ = H₁ W₂ᵀ + b₂", "(B, 256)"),
        ("H₂ = ReLU(Z₂)", "(B, 256)"),
        ("Z₃ = H₂ W₃ᵀ + b₃", "(B, 10)"),
        ("L = cross-entropy(Z₃, y)", "scalar"),
    ]
    # what the backward pass sends up into node i − 1, written on the edge above node i
    backward = {
        2: "G₁ = ∂L/∂Z₁ = ∂L/∂H₁ ⊙ 1[Z₁ > 0]",
        3: "∂L/∂H₁ = G₂ W₂",
        4: "G₂ = ∂L/∂Z₂ = ∂L/∂H₂ ⊙ 1[Z₂ > 0]",
        5: "∂L/∂H₂ = G₃ W₃",
        6: "G₃ = ∂L/∂Z₃ = (P − Y) / B",
    }
    params = {
        1: ("W₁ (120, 784)", "b₁ (120)", "∂L/∂W₁ = G₁ᵀ X", "∂L/∂b₁ = G₁ᵀ 1"),
        3: ("W₂ (256, 120)", "b₂ (256)", "∂L/∂W₂ = G₂ᵀ H₁", "∂L/∂b₂ = G₂ᵀ 1"),
        5: ("W₃ (10, 256)", "b₃ (10)", "∂L/∂W₃ = G₃ᵀ H₂", "∂L/∂b₃ = G₃ᵀ 1"),
    }
    blue, red = "#2f5d9b", "#b03a2e"
    fig = _figure(7, 7.6)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10), ax.set_ylim(-0.7, len(nodes) - 0.3), ax.axis("off")
    for i, (label, shape) in enumerate(nodes):
        y = len(nodes) - 1 - i
        ax.add_patch(
            FancyBboxPatch(
                (3.2, y - 0.28),
                3.6,
                0.56,
                boxstyle="round,pad=0.03",
                facecolor="#e3edf8" if i % 2 else "#f4f4f4",
                edgecolor=blue,
            )
        )
        ax.text(5.0, y + 0.07, label, ha="center", va="center", fontsize=10)
        ax.text(
            5.0, y - 0.16, shape, ha="center", va="center", fontsize=8, color="#555"
        )
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (4.6, y + 0.7),
                    (4.6, y + 0.32),
                    arrowstyle="-|>",
                    mutation_scale=12,
                    color=blue,
                )
            )
        if i in backward:
            ax.add_patch(
                FancyArrowPatch(
                    (5.4, y + 0.32),
                    (5.4, y + 0.7),
                    arrowstyle="-|>",
                    mutation_scale=12,
                    color=red,
                )
            )
            ax.text(
                5.55,
                y + 0.5,
                backward[i],
                ha="left",
                va="center",
                fontsize=8.5,
                color=red,
            )
        if i in params:
            w, b, dw, db = params[i]
            ax.text(
                0.1,
                y + 0.1,
                f"{w}, {b}",
                ha="left",
                va="center",
                fontsize=8.5,
                color=blue,
            )
            ax.add_patch(
                FancyArrowPatch(
                    (2.7, y), (3.15, y), arrowstyle="-|>", mutation_scale=12, color=blue
                )
            )
            ax.text(
                7.0,
                y + 0.05,
                f"{dw}\n{db}",
                ha="left",
                va="center",
                fontsize=8.5,
                color=red,
            )
    ax.text(
        5.55,
        len(nodes) - 1.5,
        "∂L/∂X: not needed",
        ha="left",
        va="center",
        fontsize=8.5,
        color="#888",
    )
    ax.text(
        0.1,
        -0.55,
        "blue: forward pass, top to bottom      red: backward pass, bottom to top",
        fontsize=8.5,
        va="center",
    )
    return fig


def autograd_graph(root) -> Figure:
    """The graph an autograd engine recorded for ``root`` (a :class:`mnistbook.autograd.Tensor`).

    Laid out from the record alone: the chain of first operands from ``root`` back runs down
    the middle (for a network, the data path), and each node's other operands sit to its
    left, in its row. Every node shows its operation (or name) and shape; the number beside
    it is its place in the topological order, the red name its backward rule. A grey frame:
    a tensor that needs no gradient."""
    from .autograd import topological_order

    order = {node: i for i, node in enumerate(topological_order(root), start=1)}
    spine = [root]
    while spine[-1].parents:
        spine.append(spine[-1].parents[0])
    spine.reverse()  # the first operand of the first operation at the top
    place = {node: (0, -row) for row, node in enumerate(spine)}
    leftmost = {-row: 0 for row in range(len(spine))}  # leftmost column used, per row

    def put_operands(node) -> None:
        """Place the operands of ``node`` not placed yet to the left, in its row."""
        row = place[node][1]
        for parent in node.parents:
            if parent not in place:
                leftmost[row] -= 1
                place[parent] = (leftmost[row], row)
                put_operands(parent)

    for node in spine:
        put_operands(node)
    half_w, half_h = 0.36, 0.23  # of a box, in columns and rows

    def route(node, i: int, parent) -> tuple[tuple, tuple, float]:
        """(start, end, bend) of the arrow from ``parent`` into operand ``i`` of ``node``."""
        (px, py), (x, y) = place[parent], place[node]
        if i == 0 and px == x == 0 and py == y + 1:  # down the spine, one row
            return (px, py - half_h), (x, y + half_h), 0.0
        if py == y and px < x:  # from the left, in the same row
            return (px + half_w, py), (x - half_w, y), 0.0
        return (px - half_w, py), (x - half_w, y), 0.45 + 0.2 * i  # around, on the left

    edges = [
        (node, i, parent) for node in place for i, parent in enumerate(node.parents)
    ]
    detour = max(
        (route(*e)[2] * abs(route(*e)[0][1] - route(*e)[1][1]) / 2 for e in edges),
        default=0.0,
    )
    left, right = min(leftmost.values()) - 0.55 - detour, 1.7
    rows = 1 - len(spine)
    inches = 1.6  # per column
    width = max(inches * (right - left), 4.0)
    legend = (
        "number: place in the topological order",
        "red: backward rule",
        "grey frame: needs no gradient",
    )
    legend = "    ".join(legend) if width > 6 else "\n".join(legend)
    footer = 0.6 if width > 6 else 0.95  # room for the legend below the last row
    blue, red, grey = "#2f5d9b", "#b03a2e", "#777777"
    fig = _figure(width, 0.62 * (0.8 + footer - rows))
    ax = fig.add_subplot()
    ax.set_xlim(right - width / inches, right), ax.set_ylim(rows - 0.35 - footer, 0.45)
    ax.axis("off")
    for node, (x, y) in place.items():
        needs = node.requires_grad
        ax.add_patch(
            FancyBboxPatch(
                (x - half_w, y - half_h),
                2 * half_w,
                2 * half_h,
                boxstyle="round,pad=0.02",
                edgecolor=blue if needs else grey,
                facecolor="#e3edf8" if node.op else "#f4f4f4",
            )
        )
        ax.text(
            x,
            y + 0.07,
            node.op or node.name or "leaf",
            ha="center",
            va="center",
            fontsize=9.5,
            color="black" if needs else grey,
        )
        ax.text(
            x,
            y - 0.12,
            str(tuple(node.shape)) if node.data.dim() else "scalar",
            ha="center",
            va="center",
            fontsize=7.5,
            color="#555",
        )
        if node in order:
            ax.text(
                x - half_w - 0.05,
                y + half_h,
                str(order[node]),
                ha="right",
                va="center",
                fontsize=8,
                color=blue,
                fontweight="bold",
            )
        if node.rule is not None:
            on_spine = x == 0
            ax.text(
                x + half_w + 0.06 if on_spine else x,
                y if on_spine else y - half_h - 0.12,
                node.rule.__name__,
                ha="left" if on_spine else "center",
                va="center",
                fontsize=7.5,
                color=red,
            )
    for node, i, parent in edges:
        start, end, bend = route(node, i, parent)
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=9,
                color=blue if parent.requires_grad else grey,
                connectionstyle=f"arc3,rad={bend}",
                shrinkA=1,
                shrinkB=1,
            )
        )
    ax.text(left + 0.05, rows - 0.4, legend, fontsize=7.5, color="#444", va="top")
    return fig


def at_steps(curves: dict[str, dict[int, float]], ylabel: str) -> Figure:
    """Values recorded after some steps ({step: value}), one line per run, on a log scale."""
    fig = _figure(7, 3.6)
    ax = fig.add_subplot()
    for name, values in curves.items():
        steps = sorted(values)
        ax.plot(
            steps,
            [values[step] for step in steps],
            marker="o",
            markersize=3,
            label=name,
        )
    ax.set_yscale("log")
    ax.set_xlabel("step"), ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def scalar_graph(values: dict[str, float], grads: dict[str, float]) -> Figure:
    """The one-input network x → z₁ → h₁ → z₂ → L of the backprop chapter, left to
    right, with each node's value (blue, forward) and the gradient of L with respect to
    it (red, backward); the parameters w₁, b₁ feed z₁ and w₂, b₂ feed z₂ from below."""
    blue, red = "#2f5d9b", "#b03a2e"
    chain = [
        ("x", "input"),
        ("z₁", "w₁x + b₁"),
        ("h₁", "ReLU(z₁)"),
        ("z₂", "w₂h₁ + b₂"),
        ("L", "½(z₂ − 1)²"),
    ]
    feeds = {"z₁": ("w₁", "b₁"), "z₂": ("w₂", "b₂")}
    fig = _figure(7.6, 3.4)
    ax = fig.add_subplot()
    ax.set_xlim(-0.3, 10.3), ax.set_ylim(-1.55, 1.75), ax.axis("off")
    xs = {name: 1.0 + 2.0 * i for i, (name, _) in enumerate(chain)}
    for name, formula in chain:
        x = xs[name]
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.62, 0.05),
                1.24,
                0.7,
                boxstyle="round,pad=0.03",
                facecolor="#e3edf8",
                edgecolor=blue,
            )
        )
        ax.text(x, 0.52, name, ha="center", va="center", fontsize=11)
        ax.text(x, 0.24, formula, ha="center", va="center", fontsize=7.5, color="#555")
        ax.text(
            x,
            0.98,
            f"{name} = {values[name]:g}",
            ha="center",
            va="center",
            fontsize=9,
            color=blue,
        )
        if name in grads:
            ax.text(
                x,
                1.28,
                f"∂L/∂{name} = {grads[name]:g}",
                ha="center",
                va="center",
                fontsize=8.5,
                color=red,
            )
    for (a, _), (b, _) in zip(chain, chain[1:]):
        ax.add_patch(
            FancyArrowPatch(
                (xs[a] + 0.66, 0.55),
                (xs[b] - 0.66, 0.55),
                arrowstyle="-|>",
                mutation_scale=11,
                color=blue,
            )
        )
        ax.add_patch(
            FancyArrowPatch(
                (xs[b] - 0.66, 0.25),
                (xs[a] + 0.66, 0.25),
                arrowstyle="-|>",
                mutation_scale=11,
                color=red,
            )
        )
    for node, params in feeds.items():
        for k, p in enumerate(params):
            x = xs[node] + (k - 0.5) * 1.3
            ax.text(
                x,
                -0.95,
                f"{p} = {values[p]:g}",
                ha="center",
                va="center",
                fontsize=8.5,
                color=blue,
            )
            ax.text(
                x,
                -1.25,
                f"∂L/∂{p} = {grads[p]:g}",
                ha="center",
                va="center",
                fontsize=8,
                color=red,
            )
            ax.add_patch(
                FancyArrowPatch(
                    (x, -0.8),
                    (xs[node] + (k - 0.5) * 0.6, 0.03),
                    arrowstyle="-|>",
                    mutation_scale=9,
                    color=blue,
                )
            )
    ax.text(
        -0.2,
        1.62,
        "blue: values, computed left to right      "
        "red: ∂L/∂ each, computed right to left",
        fontsize=8,
        va="center",
    )
    return fig


def descent_paths(
    paths: dict[str, torch.Tensor], curvature: tuple[float, float]
) -> Figure:
    """Paths (steps × 2) of optimisers on the bowl ½(c₁θ₁² + c₂θ₂²), over its contour
    lines."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    every = torch.cat(list(paths.values())).abs()
    reach_1, reach_2 = float(every[:, 0].max()) * 1.1, float(every[:, 1].max()) * 1.3
    a, b = np.meshgrid(
        np.linspace(-reach_1, reach_1, 200), np.linspace(-reach_2, reach_2, 200)
    )
    ax.contour(
        a,
        b,
        0.5 * (curvature[0] * a**2 + curvature[1] * b**2),
        levels=12,
        colors="#bbbbbb",
        linewidths=0.7,
    )
    for name, path in paths.items():
        p = path.detach().cpu().numpy()
        ax.plot(p[:, 0], p[:, 1], marker="o", markersize=2.5, linewidth=1.2, label=name)
    ax.plot(
        [0],
        [0],
        marker="*",
        markersize=10,
        color="black",
        linestyle="none",
        label="minimum",
    )
    ax.set_xlabel("θ₁ (flat direction)"), ax.set_ylabel("θ₂ (steep direction)")
    ax.legend(fontsize=8, loc="upper right")
    return fig
