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
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    relevant = np.array([[True, False], [False, True]])
    figure = plots.retrieval_grid_figure([image, image], [[image, image], [image]], np.array([[0, 1], [2, 3]]),
                                         relevant, captions=["q0", "q1"])
    axes = np.array(figure.axes).reshape(2, 3)
    colour = lambda ax: mcolors.to_hex(ax.spines["top"].get_edgecolor())  # noqa: E731
    assert [colour(ax) for ax in axes[0]] == [plots.QUERY, plots.RELEVANT, plots.IRRELEVANT]
    assert [ax.get_xlabel() for ax in axes[0]] == ["q0", "d=0", "d=1"]
    assert colour(axes[1][1]) == plots.IRRELEVANT and not axes[1][2].axison  # row 1 has one result only
    unknown = plots.retrieval_grid_figure([image], [[image]], np.array([[4]]))
    assert colour(unknown.axes[1]) == plots.UNKNOWN
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
