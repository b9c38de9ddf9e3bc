"""Benchmark an exported ONNX model on onnxruntime against the PyTorch model it came from, on the CPU.

An untrained HashingModule (ResNet-18 from scratch, 64 bits, CSQ's tanh code layer: the backbone is
what costs) is exported with hashnet.training.export.export_onnx (dynamic batch) to a temporary
folder. Each round encodes one batch of random normalised images (64 x 3 x 224 x 224 by default)
with both, in a rotated order (interleaved, so a busy neighbour slows both alike), after one warm-up
each; both run float32 with the same number of threads. Prints the median images/s of each, their
ratio, and the parity of the signs on that batch.

    python scripts/bench_export.py                  # ResNet-18, 224 px, batch 64, 5 rounds, 2 threads
    python scripts/bench_export.py --threads 1 --rounds 3 --channels-last
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from hashnet.training.export import export_onnx
from hashnet.training.exported import INPUT, OUTPUT, parity
from hashnet.training.module import HashingModule


def untrained_model(backbone: str, bits: int, size: int, channels_last: bool) -> HashingModule:
    net = {"_target_": "hashnet.nets.HashEncoder", "backbone": backbone, "hash_bit": bits, "pretrained": False,
           "channels_last": channels_last, "image_size": size}
    method = {"name": "csq", "quantization_weight": 1e-4, "seed": 0}
    return HashingModule(net=net, method=method, optim={"_target_": "torch.optim.SGD", "lr": 0.01}, lr_schedule={},
                         hash_lr_mult=10.0, num_classes=10, multi_label=False, dataset=None, eval_codes="sign").eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="resnet18")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="input pixels (square)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="for both PyTorch and onnxruntime")
    parser.add_argument("--channels-last", action="store_true", help="PyTorch in NHWC (net.channels_last=true)")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = untrained_model(args.net, args.bits, args.size, args.channels_last)
    images = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "model.onnx", input_size=args.size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = onnxruntime.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
        check = parity(path, model, images)
    array = images.numpy()

    def run_torch() -> None:
        with torch.inference_mode():
            model(images)

    def run_onnx() -> None:
        session.run([OUTPUT], {INPUT: array})
    runs: dict[str, Callable[[], None]] = {"PyTorch": run_torch, "onnxruntime": run_onnx}
    for run in runs.values():
        run()  # warm-up: first-call allocations, oneDNN primitive caches
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(args.rounds):
        for name in names[round_ % 2:] + names[:round_ % 2]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    rate = {name: args.batch / statistics.median(values) for name, values in seconds.items()}
    layout = "NHWC" if args.channels_last else "NCHW"
    print(f"{args.net}, {args.size} px, batch {args.batch}, {args.bits} bits, float32 on the CPU (PyTorch {layout}), "
          f"{args.threads} threads each, medians of {args.rounds} interleaved rounds (torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}):")
    for name, value in rate.items():
        print(f"  {name:<12} {value:8.1f} images/s   ({statistics.median(seconds[name]):.3f} s a batch)")
    print(f"  onnxruntime / PyTorch: {rate['onnxruntime'] / rate['PyTorch']:.2f}x; signs equal on the batch where "
          f"|h| > {check.tolerance:g}: {check.same_signs} ({check.near_zero} within it, {check.flipped_near_zero} of "
          f"them flipped), max |dh| = {check.max_abs_diff:.2g}")
    assert np.isfinite(check.max_abs_diff)


if __name__ == "__main__":
    main()
