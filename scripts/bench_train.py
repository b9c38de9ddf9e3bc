"""Benchmark the training step of a method: HashingModule under the Trainer against a bare PyTorch loop.

Both train the same model on the same fixed batch (uint8 pixels, as the DataModule yields them,
already on the device), so the ratio measures only what the framework adds per step: hooks,
logging, the progress bar, the method's callbacks (HashNet's continuation), optimizer and scheduler
plumbing. The Trainer is built by hashnet.tasks.setup.build_trainer from the composed train config
(its logger, callbacks and progress bar), without validation. The bare loop does what training_step
does: forward through the network and the method's code layer, the method's loss, backward,
optimiser step, scheduler step, all under the same autocast (and GradScaler for 16-mixed). Rounds interleave the two (which runs
first alternates) and medians are reported, so load changes hit both. Then it times encoding
(eval mode, inference_mode) at the eval batch size against the training batch size.

    python scripts/bench_train.py                                  # hashnet, resnet18, 64x64, fp32 (a CPU in minutes)
    python scripts/bench_train.py --method csq                     # any method= of configs/method/
    python scripts/bench_train.py --precision bf16-mixed --channels-last
    python scripts/bench_train.py --net resnet50 --size 224 --precision bf16-mixed --channels-last   # a GPU
    python scripts/bench_train.py --compile
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader, Dataset

from hashnet.methods import METHODS
from hashnet.tasks.setup import build_model, build_trainer
from hashnet.training.module import HashingModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class SameBatch(Dataset):
    """steps copies of one collated batch (a DataLoader with batch_size=None yields it as is)."""

    def __init__(self, batch: tuple[torch.Tensor, ...], steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return self.batch


class StepClock(pl.Callback):
    """Seconds from the end of training step `warmup` to the end of the last one (device synced there only)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.start, self.seconds = warmup, steps, 0.0, 0.0

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step in (self.warmup, self.steps):
            synchronize(trainer.strategy.root_device)
            now = time.perf_counter()
            self.start, self.seconds = (now, 0.0) if trainer.global_step == self.warmup else (self.start, now - self.start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lightning_steps_per_second(cfg, model: HashingModule, batch: tuple, warmup: int, steps: int) -> float:
    """Fit model for warmup + steps steps under the configured Trainer; steps/s after the warm-up."""
    clock = StepClock(warmup, warmup + steps)
    trainer = build_trainer(cfg, callbacks=[*model.method.callbacks(), clock])
    trainer.fit(model, train_dataloaders=DataLoader(SameBatch(batch, warmup + steps), batch_size=None))
    return steps / clock.seconds


def bare_steps_per_second(model: HashingModule, batch: tuple, precision: str, warmup: int, steps: int) -> float:
    """The same step as training_step in a plain loop; steps/s after the warm-up."""
    device = next(model.parameters()).device
    images, labels, index = (t.to(device) for t in batch)
    optimizer, scheduler = (lambda c: (c["optimizer"], c["lr_scheduler"]["scheduler"]))(model.configure_optimizers())
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    autocast = (torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST else nullcontext())
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        with autocast:
            loss = model.method.training_loss(model.method(model.net(images)), labels, index)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    synchronize(device)
    return steps / (time.perf_counter() - start)


def encode_images_per_second(model: HashingModule, images: torch.Tensor, batch_size: int, precision: str) -> float:
    """Images/s of eval-mode encoding under inference_mode, batch_size images a call."""
    device = next(model.parameters()).device
    autocast = (torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST else nullcontext())
    model.eval()
    chunks = images.to(device).split(batch_size)
    with torch.inference_mode(), autocast:
        model.net(chunks[0])
        synchronize(device)
        start = time.perf_counter()
        for chunk in chunks:
            model.net(chunk)
        synchronize(device)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="hashnet", choices=sorted(METHODS))
    parser.add_argument("--net", default="resnet18")
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--batch-size", type=int, default=72)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network (compile=true)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    output_dir = tempfile.mkdtemp(prefix="hashnet_bench_train_")
    overrides = [f"method={args.method}", f"net={args.net}", "net.pretrained=false", f"net.channels_last={args.channels_last}",
                 f"trainer.precision={args.precision}", f"compile={args.compile}", f"paths.output_dir={output_dir}",
                 "val_every=1000000", "+trainer.limit_val_batches=0", "callbacks.checkpoint.save_last=false",
                 f"max_steps={args.warmup + args.steps}"]
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if cfg.method.get("class_num") == "auto":
        cfg.method.class_num = 10.0  # what auto gives for the benchmark's 10 balanced random classes
    torch.manual_seed(0)
    model = build_model(cfg)
    if cfg.compile:
        model.net.compile()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    images = torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8, device=device)
    labels = torch.eye(10, device=device)[torch.randint(0, 10, (args.batch_size,), device=device)]
    batch = (images, labels, torch.arange(args.batch_size, device=device))

    ours, bare = [], []
    for round_ in range(args.rounds):  # which one goes first alternates, so a drift in load favours neither
        for run_lightning in (round_ % 2 == 0, round_ % 2 == 1):
            if run_lightning:
                ours.append(lightning_steps_per_second(cfg, model, batch, args.warmup, args.steps))
            else:
                bare.append(bare_steps_per_second(model, batch, args.precision,
                                                  args.warmup, args.steps))
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{args.method}, {args.net} {args.size}x{args.size}, batch {args.batch_size}, {args.precision}, "
          f"channels_last={args.channels_last}, compile={args.compile}, {name}; median of {args.rounds} rounds "
          f"of {args.steps} steps:")
    print(f"  Lightning {statistics.median(ours):.3f} steps/s, bare loop {statistics.median(bare):.3f} steps/s, "
          f"ratio {statistics.median(ours) / statistics.median(bare):.3f}  (per round: "
          f"{', '.join(f'{o / b:.3f}' for o, b in zip(ours, bare))})")

    pool = torch.randint(0, 256, (2 * args.eval_batch_size, 3, args.size, args.size), dtype=torch.uint8)
    speeds = {b: statistics.median(encode_images_per_second(model, pool, b, args.precision) for _ in range(args.rounds))
              for b in (args.batch_size, args.eval_batch_size)}
    print(f"  encoding (eval mode, inference_mode): {speeds[args.eval_batch_size]:.1f} images/s at batch "
          f"{args.eval_batch_size}, {speeds[args.batch_size]:.1f} at the training batch {args.batch_size}")


if __name__ == "__main__":
    main()
