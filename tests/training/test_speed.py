"""Speed options: uint8 input and channels_last in HashNet, mixed precision and channels_last in training."""
import pytest
import torch
from hydra.utils import instantiate

from hashnet.data.images import normalize_pixels
from hashnet.nets import HashEncoder
from hashnet.tasks.setup import build_trainer

from conftest import compose_config, resolved_model

TINY = ["hash_bit=16", "max_steps=2", "val_every=1000", "dataset.eval_batch_size=750", "trainer.accelerator=cpu"]


def test_uint8_input_is_normalised_and_channels_last_changes_nothing_but_layout():
    torch.manual_seed(0)
    net = HashEncoder("resnet18", 16, pretrained=False, channels_last=False, image_size=None).eval()
    fast = HashEncoder("resnet18", 16, pretrained=False, channels_last=True, image_size=None).eval()
    fast.load_state_dict(net.state_dict())
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not net.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    with torch.inference_mode():
        expected = net(normalize_pixels(pixels))
        assert torch.equal(net(pixels), expected)
        assert torch.allclose(fast(pixels), expected, atol=1e-5)


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_two_mixed_precision_steps_change_the_weights(digits_root, tmp_path, precision):
    cfg = compose_config("train", [*TINY, f"trainer.precision={precision}", "net.channels_last=true",
                                   "+trainer.limit_val_batches=0", "callbacks.checkpoint.save_last=false",
                                   f"paths.data_dir={digits_root.parent}"], tmp_path)
    datamodule, model = instantiate(cfg.dataset), resolved_model(cfg)
    before = model.net.hash_layer.weight.detach().clone()
    trainer = build_trainer(cfg, callbacks=model.method.callbacks())
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 2 and trainer.precision == "bf16-mixed"  # Lightning runs CPU 16-mixed as bf16
    assert torch.isfinite(trainer.callback_metrics["train/loss"]) and trainer.callback_metrics["train/beta"] == 1.0
    assert not torch.equal(model.net.hash_layer.weight, before) and model.net.hash_layer.weight.dtype == torch.float32
    assert model.net.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # evaluation under the same autocast keeps float32 outputs for the metric
    images, labels, index = next(iter(datamodule.split_dataloader("query")))
    model.on_validation_epoch_start()
    with trainer.precision_plugin.forward_context():
        model.validation_step((images[:8], labels[:8], index[:8]), 0, dataloader_idx=0)
    outputs = model.split_outputs["query"].compute()[0]
    assert outputs.dtype == torch.float32 and outputs.shape == (8, 16) and torch.isfinite(outputs).all()
