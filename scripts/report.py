"""Collect the metrics.json of runs or sweeps into the paper's tables, as Markdown and CSV.

    python scripts/report.py multirun/2026-11-28_03-00-00                # a sweep folder
    python scripts/report.py outputs/coco multirun/... --out reports/    # several; --out: where to write

Prints the Markdown and writes report.md, report.csv (one row per run), a bar chart per methods-table panel
(methods_<dataset>_<net>_<K>bit_<steps>steps.png: mean, std and each seed; the methods that never read the labels in
methods_<dataset>_<net>_<K>bit_without_labels.png) and, for methods run at several code lengths, mAP against K
(bits_<dataset>_<net>_<steps>steps.png) into --out (default: the first folder given). Every
row names its protocol (hashnet/data/protocol.py); runs of different protocols in one row are refused with both
folders named. See hashnet/outputs/report.py for the layout.
"""
import argparse
from pathlib import Path

from hashnet.outputs.plots import bits_figure, methods_figure
from hashnet.outputs.report import bits_series, methods_cells, to_csv, to_markdown
from hashnet.outputs.runs import collect
from hashnet.utils.errors import exit_on_error
from hashnet.utils.files import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run or multirun folders (searched recursively)")
    parser.add_argument("--out", type=Path, help="folder for report.md and report.csv (default: the first run_dir)")
    args = parser.parse_args()
    with exit_on_error("report"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        notes: list[str] = []
        runs = collect(args.run_dirs, notes)
        out = args.out or args.run_dirs[0]
        markdown = to_markdown(runs)
        atomic_write(out / "report.md", lambda f: f.write(markdown.encode()), "pass --out <a writable folder>")
        atomic_write(out / "report.csv", lambda f: f.write(to_csv(runs).encode()), "pass --out <a writable folder>")
        figures = {f"methods_{name}.png": methods_figure(cells, metric, name.replace("_", " "))  # a bar per method
                   for name, (metric, cells) in methods_cells(runs).items()}
        figures |= {f"bits_{name}.png": bits_figure(series, metric, name.replace("_", " "))  # mAP against K
                    for name, (metric, series) in bits_series(runs).items()}
        for name, figure in figures.items():
            atomic_write(out / name, lambda f, fig=figure: fig.savefig(f, format="png"),
                         "pass --out <a writable folder>")
    print(f"{markdown}\n{len(runs)} runs -> {out / 'report.md'}, {out / 'report.csv'}"
          + "".join(f", {out / name}" for name in figures))
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
