"""Export a trained checkpoint to ONNX or TorchScript, beside it, with a JSON sidecar and a parity check.

    python scripts/export.py ckpt_path=outputs/.../checkpoints/last.ckpt format=onnx
    python scripts/export.py ckpt_path=outputs/.../checkpoints/last.ckpt format=torchscript
    python scripts/export.py ckpt_path=outputs/.../checkpoints/last.ckpt format=onnx dynamic_batch=false batch_size=8
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.export import export
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
def main(cfg: DictConfig) -> None:
    with exit_on_error("export"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        export(cfg)


if __name__ == "__main__":
    run(main, "export")  # Hydra's own errors (an unknown key, a bad override) as one line too
