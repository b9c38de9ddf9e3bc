"""Tests for hashnet.outputs.plots: each figure renders from small arrays and shows what it should."""
import matplotlib.colors as mcolors
import numpy as np

from hashnet.outputs import plots


def test_curves_and_histogram_render():
    pr = plots.pr_curve_figure(np.array([1.0, 0.8, 0.5, 0.3, 0.2]), np.array([0.1, 0.3, 0.6, 0.9, 1.0]), "t")
    assert pr.axes[0].get_title() == "t" and np.allclose(pr.axes[0].lines[0].get_ydata(), [1.0, 0.8, 0.5, 0.3, 0.2])
    assert [a.get_text() for a in pr.axes[0].texts] == ["r=0", "r=2"]
    pk = plots.precision_at_k_figure([1, 5, 10], np.array([1.0, 0.6, 0.5]))
    assert list(pk.axes[0].lines[0].get_xdata()) == [1, 5, 10]
    histogram = plots.output_histogram_figure(np.array([[-1.0, 0.995], [0.2, -0.3]]))
    assert histogram.axes[0].get_title() == "pre-sign outputs: 50.0% with |h| > 0.99"
    image = plots.figure_to_array(histogram)
    assert image.dtype == np.uint8 and image.shape == (400, 500, 3)


def test_retrieval_grid_frames_by_relevance():
    image = np.full((8, 8, 3), 7, dtype=np.uint8)
    relevant = np.array([[True, False], [False, True]])
    figure = plots.retrieval_grid_figure([image, image], [[image, image], [image]], np.array([[0, 1], [2, 3]]),
                                         relevant, captions=["q0", "q1"])
    (ax,) = figure.axes
    mosaic = np.asarray(ax.images[0].get_array())
    cell_h, cell_w = 8 + 2 * plots.GRID_FRAME + plots.GRID_LABEL, 8 + 2 * plots.GRID_FRAME + plots.GRID_GAP
    assert mosaic.shape == (2 * cell_h, 3 * cell_w, 3)
    def hex_at(row: int, col: int) -> str:  # the colour of a tile's top-left corner
        return mcolors.to_hex(mosaic[row * cell_h, col * cell_w] / 255)
    assert [hex_at(0, c) for c in range(3)] == [plots.QUERY, plots.RELEVANT, plots.IRRELEVANT]
    assert hex_at(1, 1) == plots.IRRELEVANT and hex_at(1, 2) == "#ffffff"  # row 1 has one result only
    frame = plots.GRID_FRAME
    assert (mosaic[frame:frame + 8, cell_w + frame:cell_w + frame + 8] == 7).all()  # the image inside its frame
    assert [text.get_text() for text in ax.texts] == ["q0", "d=0", "d=1", "q1", "d=2"]
    unknown = plots.retrieval_grid_figure([image], [[image]], np.array([[4]]))
    assert mcolors.to_hex(np.asarray(unknown.axes[0].images[0].get_array())[0, cell_w] / 255) == plots.UNKNOWN
    assert plots.figure_to_array(figure).shape[2] == 3


def test_methods_figure_bars_at_the_mean_with_the_std_and_a_dot_per_seed():
    figure = plots.methods_figure({"hashnet": [0.6, 0.7, 0.8], "dpsh+bank": [0.5]}, "mAP@all", "fashion")
    ax = figure.axes[0]
    bars = [patch for patch in ax.patches]
    # hashnet: mean 0.7; dpsh+bank: 0.5 (one run, no whisker)
    assert [round(bar.get_width(), 6) for bar in bars] == [0.7, 0.5]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["hashnet", "dpsh+bank"]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert list(dots[0].get_xdata()) == [0.6, 0.7, 0.8] and list(dots[1].get_xdata()) == [0.5]
    whisker = [c for c in ax.containers if hasattr(c, "lines") and c.lines[2]][0]  # the std over 3 seeds: 0.1
    segment = whisker.lines[2][0].get_segments()[0]
    assert np.allclose(segment[:, 0], [0.6, 0.8])
    assert [text.get_text() for text in ax.texts] == ["0.700", "0.500"] and ax.get_xlabel() == "mAP@all"


def test_bits_figure_a_line_per_method_through_the_means():
    series = {"hashnet": {16: [0.5], 32: [0.6, 0.8], 64: [0.75]}, "classifier": {16: [0.6], 64: [0.6]}}
    figure = plots.bits_figure(series, "mAP@all")
    ax = figure.axes[0]
    lines = [line for line in ax.lines if line.get_marker() == "o"]
    assert list(lines[0].get_xdata()) == [16, 32, 64] and np.allclose(lines[0].get_ydata(), [0.5, 0.7, 0.75])
    assert list(lines[1].get_xdata()) == [16, 64]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["hashnet", "classifier"]
    assert list(ax.get_xticks()) == [16, 32, 64] and ax.get_ylabel() == "mAP@all"
