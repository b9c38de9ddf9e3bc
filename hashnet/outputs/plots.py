"""Figures of a retrieval evaluation: arrays in, matplotlib Figure out (no pyplot, no files, no state).

Figures are drawn on matplotlib's Agg canvas, so they render the same on a headless machine;
`figure_to_array` turns one into an RGB image for TensorBoard.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

RELEVANT, IRRELEVANT, UNKNOWN, QUERY = "#2ca02c", "#d62728", "#7f7f7f", "#1f77b4"  # frame colours
SATURATED = 0.99  # |output| above which a pre-sign output counts as saturated (tanh at its limit)
GRID_FRAME, GRID_GAP, GRID_LABEL = 3, 6, 14  # retrieval grid: frame, gap between tiles, label band (pixels)
GRID_SCALE = 1.5  # a 64-pixel thumbnail drawn 96 pixels wide


def _figure(width: float, height: float) -> Figure:
    """A Figure attached to an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render figure -> (H, W, 3) uint8 RGB."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def pr_curve_figure(precision: np.ndarray, recall: np.ndarray, title: str = "") -> Figure:
    """Precision against recall of the Hamming balls of radius 0..K: precision, recall (K+1,)."""
    figure = _figure(5, 4)
    ax = figure.add_subplot()
    ax.plot(recall, precision, marker="o", markersize=3)
    for radius in sorted({0, 2, len(precision) // 2}):  # a few radii named on the curve
        ax.annotate(f"r={radius}", (recall[radius], precision[radius]), textcoords="offset points", xytext=(4, 4))
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
           title=title or f"PR over Hamming radius 0..{len(precision) - 1}")
    ax.grid(alpha=0.3)
    return figure


def precision_at_k_figure(ks: Sequence[int], precision: np.ndarray, title: str = "") -> Figure:
    """Precision of the top k against k: ks (M,), precision (M,)."""
    figure = _figure(5, 4)
    ax = figure.add_subplot()
    ax.plot(ks, precision)
    ax.set(xlabel="k (items retrieved)", ylabel="precision@k", ylim=(0, 1.02), title=title or "precision@k")
    ax.grid(alpha=0.3)
    return figure


def output_histogram_figure(outputs: np.ndarray, title: str = "") -> Figure:
    """Histogram of the pre-sign outputs (N, K) in [-1, 1], with the share of saturated ones."""
    values = np.asarray(outputs, dtype=np.float64).ravel()
    figure = _figure(5, 4)
    ax = figure.add_subplot()
    ax.hist(values, bins=np.linspace(-1, 1, 51), color=QUERY)
    saturated = float(np.mean(np.abs(values) > SATURATED)) if len(values) else 0.0
    ax.set(xlabel="output before sign", ylabel="count", xlim=(-1, 1),
           title=title or f"pre-sign outputs: {saturated:.1%} with |h| > {SATURATED}")
    return figure


def retrieval_grid_figure(queries: Sequence[np.ndarray], retrieved: Sequence[Sequence[np.ndarray]],
                          distances: np.ndarray, relevant: np.ndarray | None = None,
                          captions: Sequence[str] | None = None) -> Figure:
    """One row per query: the query image, then its retrieved images in rank order, each in a coloured frame.

    queries: Q images (H, W, 3) uint8; retrieved: Q lists of k images of the same size; distances (Q, k) Hamming
    distances; relevant (Q, k) bool frames each retrieved image green (True) or red (False), grey when None (labels
    unknown); captions: Q strings under the query images. The tiles are one image (grid_mosaic) on one axes: 88
    axes of their own took seconds to lay out and draw at the end of every run.
    """
    mosaic, cells = grid_mosaic(queries, retrieved, distances, relevant, captions)
    height, width = mosaic.shape[:2]
    figure = Figure(figsize=(GRID_SCALE * width / 100, GRID_SCALE * height / 100), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, label in cells:
        ax.text(x, y, label, ha="center", va="top", fontsize=7)
    return figure


def grid_mosaic(queries: Sequence[np.ndarray], retrieved: Sequence[Sequence[np.ndarray]], distances: np.ndarray,
                relevant: np.ndarray | None = None, captions: Sequence[str] | None = None
                ) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The retrieval grid as one (rows * cell_h, cols * cell_w, 3) uint8 image on white, and each tile's label with
    the pixel (x, y) of its top centre, in the band under the tile."""
    height, width = queries[0].shape[:2]
    cell_h, cell_w = height + 2 * GRID_FRAME + GRID_LABEL, width + 2 * GRID_FRAME + GRID_GAP
    rows, cols = len(queries), 1 + max(len(row) for row in retrieved)
    mosaic = np.full((rows * cell_h, cols * cell_w, 3), 255, np.uint8)
    cells = []
    for q in range(rows):
        tiles = [(queries[q], QUERY, captions[q] if captions else "query")]
        for c, image in enumerate(retrieved[q]):
            colour = UNKNOWN if relevant is None else RELEVANT if relevant[q, c] else IRRELEVANT
            tiles.append((image, colour, f"d={int(distances[q, c])}"))
        for c, (image, colour, label) in enumerate(tiles):
            y, x = q * cell_h, c * cell_w
            mosaic[y:y + height + 2 * GRID_FRAME, x:x + width + 2 * GRID_FRAME] = np.array(to_rgb(colour)) * 255
            mosaic[y + GRID_FRAME:y + GRID_FRAME + height, x + GRID_FRAME:x + GRID_FRAME + width] = image
            cells.append((x + GRID_FRAME + width / 2, y + height + 2 * GRID_FRAME + 1, label))
    return mosaic, cells


def methods_figure(cells: dict[str, Sequence[float]], metric: str, title: str = "") -> Figure:
    """One bar per method: the mean of its runs' scores with a +-1 std whisker and a dot per run (seed);
    cells: method -> scores, drawn top to bottom in the dict's order."""
    names = list(cells)
    figure = _figure(6, 0.38 * len(names) + 1.1)
    ax = figure.add_subplot()
    for row, name in enumerate(names):
        scores = np.asarray(cells[name], dtype=np.float64)
        std = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
        ax.barh(row, scores.mean(), xerr=std, color=QUERY, alpha=0.6, capsize=3)
        ax.plot(scores, np.full(len(scores), row), "o", color="black", markersize=3)
        ax.annotate(f"{scores.mean():.3f}", (scores.mean(), row), textcoords="offset points", xytext=(4, -10),
                    fontsize=7)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set(xlabel=metric, xlim=(0, 1), title=title)
    ax.grid(axis="x", alpha=0.3)
    return figure


def bits_figure(series: dict[str, dict[int, Sequence[float]]], metric: str, title: str = "") -> Figure:
    """mAP against code length, a line per method through the mean at each length, with a +-1 std whisker where
    several runs (seeds) were scored; series: method -> {bits: scores}."""
    figure = _figure(5, 4)
    ax = figure.add_subplot()
    for name, by_bits in series.items():
        bits = sorted(by_bits)
        scores = [np.asarray(by_bits[b], dtype=np.float64) for b in bits]
        std = [float(s.std(ddof=1)) if len(s) > 1 else 0.0 for s in scores]
        ax.errorbar(bits, [s.mean() for s in scores], yerr=std, marker="o", capsize=3, label=name)
    ax.set_xticks(sorted({b for by_bits in series.values() for b in by_bits}))
    ax.set(xlabel="code length K (bits)", ylabel=metric, ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure
