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
        ax.imshow(image.detach().cpu().reshape(28, 28) / 2 + 0.5, cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel(title, fontsize=9)
    return fig


def running_mean(values, window: int) -> np.ndarray:
    """Mean of each consecutive block of ``window`` values (the running loss the original
    notebook prints)."""
    values = np.asarray(values, dtype=float)
    blocks = len(values) // window
    return values[: blocks * window].reshape(blocks, window).mean(axis=1)


def loss_curves(curves: dict[str, list[float]], window: int = 500, title: str = "",
                logy: bool = False, styles: dict | None = None) -> Figure:
    """Per-step losses averaged over blocks of ``window`` steps, one line per run."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    for name, losses in curves.items():
        y = running_mean(losses, window) if len(losses) >= window else np.asarray(losses, dtype=float)
        step = window if len(losses) >= window else 1
        x = (np.arange(len(y)) + 1) * step
        ax.plot(x, y, label=name, **(styles or {}).get(name, {}))
    ax.set_xlabel("mini-batch (step)")
    ax.set_ylabel(f"training loss (mean of {window} steps)" if window > 1 else "training loss")
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
    shown = np.log1p(m)  # a log scale lets the few mistakes show beside the large diagonal
    image = ax.imshow(shown, cmap="Blues")
    for (i, j), count in np.ndenumerate(m):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > shown.max() / 2 else "black")
    ax.set_xticks(range(len(m)), classes), ax.set_yticks(range(len(m)), classes)
    ax.set_xlabel("predicted class"), ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return fig


def heatmap(matrix: torch.Tensor, title: str, xlabel: str = "j", ylabel: str = "i") -> Figure:
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


def series(curves: dict[str, list[float]], xlabel: str, ylabel: str, title: str = "",
           logy: bool = True, hlines: dict[str, float] | None = None) -> Figure:
    """Several sequences against their index, optionally with labelled horizontal lines."""
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    for name, level in (hlines or {}).items():
        ax.axhline(level, color="grey", linestyle="--", linewidth=1)
        ax.annotate(name, (0.01, level), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize=8, color="grey")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return fig


def computational_graph() -> Figure:
    """The network's forward pass top to bottom (blue), and what the backward pass sends up (red)."""
    nodes = [("X", "(B, 784)"), ("Z₁ = X W₁ᵀ + b₁", "(B, 120)"), ("H₁ = ReLU(Z₁)", "(B, 120)"),
             ("Z₂ = H₁ W₂ᵀ + b₂", "(B, 256)"), ("H₂ = ReLU(Z₂)", "(B, 256)"),
             ("Z₃ = H₂ W₃ᵀ + b₃", "(B, 10)"), ("L = cross-entropy(Z₃, y)", "scalar")]
    # what the backward pass sends up into node i − 1, written on the edge above node i
    backward = {2: "G₁ = ∂L/∂Z₁ = ∂L/∂H₁ ⊙ 1[Z₁ > 0]", 3: "∂L/∂H₁ = G₂ W₂",
                4: "G₂ = ∂L/∂Z₂ = ∂L/∂H₂ ⊙ 1[Z₂ > 0]", 5: "∂L/∂H₂ = G₃ W₃",
                6: "G₃ = ∂L/∂Z₃ = (P − Y) / B"}
    params = {1: ("W₁ (120, 784)", "b₁ (120)", "∂L/∂W₁ = G₁ᵀ X", "∂L/∂b₁ = G₁ᵀ 1"),
              3: ("W₂ (256, 120)", "b₂ (256)", "∂L/∂W₂ = G₂ᵀ H₁", "∂L/∂b₂ = G₂ᵀ 1"),
              5: ("W₃ (10, 256)", "b₃ (10)", "∂L/∂W₃ = G₃ᵀ H₂", "∂L/∂b₃ = G₃ᵀ 1")}
    blue, red = "#2f5d9b", "#b03a2e"
    fig = _figure(7, 7.6)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10), ax.set_ylim(-0.7, len(nodes) - 0.3), ax.axis("off")
    for i, (label, shape) in enumerate(nodes):
        y = len(nodes) - 1 - i
        ax.add_patch(FancyBboxPatch((3.2, y - 0.28), 3.6, 0.56, boxstyle="round,pad=0.03",
                                    facecolor="#e3edf8" if i % 2 else "#f4f4f4", edgecolor=blue))
        ax.text(5.0, y + 0.07, label, ha="center", va="center", fontsize=10)
        ax.text(5.0, y - 0.16, shape, ha="center", va="center", fontsize=8, color="#555")
        if i:
            ax.add_patch(FancyArrowPatch((4.6, y + 0.7), (4.6, y + 0.32), arrowstyle="-|>",
                                         mutation_scale=12, color=blue))
        if i in backward:
            ax.add_patch(FancyArrowPatch((5.4, y + 0.32), (5.4, y + 0.7), arrowstyle="-|>",
                                         mutation_scale=12, color=red))
            ax.text(5.55, y + 0.5, backward[i], ha="left", va="center", fontsize=8.5, color=red)
        if i in params:
            w, b, dw, db = params[i]
            ax.text(0.1, y + 0.1, f"{w}, {b}", ha="left", va="center", fontsize=8.5, color=blue)
            ax.add_patch(FancyArrowPatch((2.7, y), (3.15, y), arrowstyle="-|>",
                                         mutation_scale=12, color=blue))
            ax.text(7.0, y + 0.05, f"{dw}\n{db}", ha="left", va="center", fontsize=8.5, color=red)
    ax.text(5.55, len(nodes) - 1.5, "∂L/∂X: not needed", ha="left", va="center", fontsize=8.5,
            color="#888")
    ax.text(0.1, -0.55, "blue: forward pass, top to bottom      "
            "red: backward pass, bottom to top", fontsize=8.5, va="center")
    return fig
