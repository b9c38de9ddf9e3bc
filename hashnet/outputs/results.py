"""What an evaluation leaves behind: metrics.json, TensorBoard scalars/figures and PNGs in the run folder.

Everything is computed from a hashnet.retrieval.evaluation.Retrieval (the last test run's outputs,
codes and labels of the query and database splits, and mAP@R); the retrieval grid and the protocol
line (hashnet.data.protocol) also read the datamodule's image paths. Only rank 0 writes or logs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from matplotlib.figure import Figure
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger

from hashnet.data.protocol import Protocol, queries_in_database, split_of
from hashnet.outputs import plots
from hashnet.retrieval.codes import pack_codes
from hashnet.retrieval.evaluation import Retrieval
from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.metrics import precision_at_hamming_radius, precision_at_k, precision_recall_curve
from hashnet.utils.files import atomic_write, atomic_write_json

RADIUS = 2  # P@H<=2: the paper's precision within Hamming radius 2
CURVE_POINTS = 100  # k values of the precision@k curve, evenly spaced over 1..R
GRID_QUERIES, GRID_TOP = 8, 10  # the retrieval picture: 8 queries spread over the query list, top 10 each
THUMBNAIL = 64  # pixels per side of an image in the retrieval picture
SHOWN_SKIPPED = 20  # skipped images named in metrics.json; the count covers all of them


def curve_ks(depth: int) -> list[int]:
    """About CURVE_POINTS distinct k in 1..depth, evenly spaced, both ends included."""
    return np.unique(np.linspace(1, depth, CURVE_POINTS).round().astype(int)).tolist()


def retrieval_metrics(retrieval: Retrieval) -> dict:
    """P@H<=2, the PR curve over radii 0..K and precision@k for k up to R."""
    codes = (retrieval.query_codes, retrieval.query_labels, retrieval.db_codes, retrieval.db_labels)
    precision, recall = precision_recall_curve(*codes)
    ks = curve_ks(min(retrieval.topk or len(codes[2]), len(codes[2])))
    return {
        "precision_at_hamming_2": precision_at_hamming_radius(*codes, radius=RADIUS),
        "pr_curve": {"radius": list(range(len(precision))), "precision": precision.tolist(), "recall": recall.tolist()},
        "precision_at_k": {"k": ks, "precision": precision_at_k(*codes, ks).tolist()},
    }


def thumbnails(paths: Sequence[str], size: int = THUMBNAIL) -> list[np.ndarray]:
    """The images at paths as (size, size, 3) uint8 RGB arrays, for pictures."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
    return images


def nearest(query_codes: np.ndarray, db_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) (Q, k) of the k nearest db codes (N, K) to query codes (Q, K), ties by index.

    Codes whose K is not a multiple of 8 are padded with equal bits, which leaves distances unchanged.
    """
    pad = ((0, 0), (0, -query_codes.shape[1] % 8))
    index = HammingIndex(pack_codes(np.pad(db_codes, pad, constant_values=1)))
    return index.search(pack_codes(np.pad(query_codes, pad, constant_values=1)), k)


def retrieval_grid(retrieval: Retrieval, query_paths: Sequence[str], db_paths: Sequence[str]) -> Figure:
    """GRID_QUERIES queries spread over the query list with their top GRID_TOP, framed by relevance.

    query_paths, db_paths: the splits' lists; the retrieval's rows are those its index names (a skipped image has none).
    """
    query_paths = [query_paths[i] for i in retrieval.query_index.tolist()]
    db_paths = [db_paths[i] for i in retrieval.db_index.tolist()]
    chosen = np.unique(np.linspace(0, len(query_paths) - 1, GRID_QUERIES).round().astype(int))
    query_codes, db_codes = retrieval.query_codes.numpy(), retrieval.db_codes.numpy()
    distances, indices = nearest(query_codes[chosen], db_codes, GRID_TOP)
    query_labels, db_labels = retrieval.query_labels.numpy(), retrieval.db_labels.numpy()
    relevant = (query_labels[chosen][:, None, :] * db_labels[indices]).sum(-1) > 0
    retrieved = [thumbnails([db_paths[i] for i in row]) for row in indices]
    captions = [f"query {i}" for i in chosen]
    return plots.retrieval_grid_figure(thumbnails([query_paths[i] for i in chosen]), retrieved, distances,
                                       relevant, captions)


def skipped_images(datamodule: pl.LightningDataModule | None) -> dict:
    """How many images the datamodule skipped as unreadable (dataset.on_bad_image=skip) and the first names."""
    names = list(getattr(datamodule, "skipped_images", []))
    return {"count": len(names), "names": names[:SHOWN_SKIPPED]}


def is_png(path: Path) -> bool:
    """Whether the file at path is a PNG image (what save_png may write over)."""
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


PNG_FILE = ("a PNG image", is_png)  # for hashnet.utils.files.check_writable(..., replaces=PNG_FILE)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write an (H, W, 3) uint8 image (a figure: plots.figure_to_array) as a PNG, atomically."""
    return atomic_write(path, lambda f: Image.fromarray(image).save(f, format="png"))


def publish_plots(trainer: pl.Trainer, retrieval: Retrieval, results: dict, plot_dir: Path) -> list[Path]:
    """Draw the evaluation's figures, save them as PNGs in plot_dir, log them to TensorBoard (if used)."""
    title = f"{results['method']}, {results['dataset']}, {results['net']}, {results['hash_bit']} bits"
    pr, pk = results["pr_curve"], results["precision_at_k"]
    figures = {
        "pr_curve": plots.pr_curve_figure(np.array(pr["precision"]), np.array(pr["recall"]), f"PR, {title}"),
        "precision_at_k": plots.precision_at_k_figure(pk["k"], np.array(pk["precision"]), f"precision@k, {title}"),
        "code_histogram": plots.output_histogram_figure(retrieval.db_outputs.numpy()),
    }
    datamodule = trainer.datamodule
    if datamodule is not None and hasattr(datamodule, "dataset"):
        paths = [datamodule.dataset(split).image_list.paths for split in ("query", "database")]
        figures["retrieval_grid"] = retrieval_grid(retrieval, *paths)
    images = {name: plots.figure_to_array(figure) for name, figure in figures.items()}  # drawn once, for both
    written = [save_png(image, plot_dir / f"{name}.png") for name, image in images.items()]
    if isinstance(trainer.logger, TensorBoardLogger):
        writer, step = trainer.logger.experiment, trainer.global_step
        writer.add_scalar(f"test/P@H<={RADIUS}", results["precision_at_hamming_2"], step)
        writer.add_histogram("test/pre_sign_outputs", retrieval.db_outputs, step)
        for name, image in images.items():
            writer.add_image(f"test/{name}", image, step, dataformats="HWC")
        writer.flush()
    return written


def evaluation_protocol(retrieval: Retrieval, datamodule: pl.LightningDataModule | None) -> Protocol:
    """The protocol of the retrieval's mAP: its R and conventions, and from the datamodule whether a query
    image is in the database (from the image paths when it has them, else "no" only when
    exclude_queries_from_database is on) and the split ("strict" with either protocol option)."""
    exclude = bool(getattr(datamodule, "exclude_queries_from_database", False))
    overlap = False if exclude else None
    if datamodule is not None and hasattr(datamodule, "dataset"):
        overlap = queries_in_database(*(datamodule.dataset(split).image_list.paths for split in ("query", "database")))
    split = split_of(bool(getattr(datamodule, "drop_unlabeled", False)), exclude)
    unseen = getattr(datamodule, "unseen_classes", None)
    return Protocol(retrieval.topk, retrieval.ties, retrieval.empty_queries, overlap, split, unseen)


def clamped_note(requested: object, results: dict) -> str:
    """'dataset.topk=<R> is more than the <N> database images' when the R asked for (the first of a list: the one
    mAP reports) was clamped to the database; '' otherwise."""
    first = list(requested)[0] if isinstance(requested, Sequence) and not isinstance(requested, str) else requested
    if first is None or first == results["topk"]:
        return ""
    return f"dataset.topk={first} is more than the {results['num_database']} database images"


NOT_EVALUATED = "no evaluation: %s; the checkpoint encodes and serves it"  # the line train and evaluate log, with why


def no_labels(dataset: str) -> str:
    """Why a dataset without labels (a folder of unlabelled images) is not evaluated: NOT_EVALUATED's reason and
    metrics.json's not_evaluated."""
    return f"dataset={dataset} has no labels, which mAP needs"


def write_unevaluated(trainer: pl.Trainer, run: dict, reason: str, output_dir: Path) -> dict:
    """The record of a run with nothing to evaluate: run (run_info), the images skipped as unreadable and reason as
    not_evaluated, no mAP or other score; rank 0 writes it to output_dir/metrics.json."""
    results = {"not_evaluated": reason, **run, "skipped_images": skipped_images(trainer.datamodule)}
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", results)
    return results


def write_results(trainer: pl.Trainer, retrieval: Retrieval, run: dict, output_dir: Path) -> dict:
    """The evaluation's numbers with run (method, hash_bit, net, dataset, checkpoint, steps, the machine; a training
    run's train_seconds); rank 0 writes output_dir/metrics.json and the plots (output_dir/plots/).

    topk is the R used (the requested one, topk_requested, clamped to the database); mAP is None (null) when no
    query could be scored (scored_queries 0), not a score of 0.0."""
    protocol = evaluation_protocol(retrieval, trainer.datamodule)
    scored = retrieval.scored_queries
    results = {
        "mAP": None if scored == 0 else retrieval.mAP,
        "mAP_at": retrieval.mAP_at,  # every R of dataset.topk, from one scan ({"all": ..., "1000": ...})
        "protocol": str(protocol),
        **asdict(protocol),  # topk, ties, empty_queries, queries_in_database, split: what the line says
        "topk_requested": retrieval.topk_requested,
        "scored_queries": scored,
        **run,
        "eval_codes": retrieval.eval_codes,
        "num_queries": len(retrieval.query_codes),
        "num_database": len(retrieval.db_codes),
        "skipped_images": skipped_images(trainer.datamodule),
        "unlabeled_rows": dict(getattr(trainer.datamodule, "unlabeled_rows", {})),  # counted (and warned) at setup
        **retrieval_metrics(retrieval),
    }
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", results)
        publish_plots(trainer, retrieval, results, output_dir / "plots")
    return results
