import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from hashnet.nets import HashEncoder


def HashNet(backbone: str, hash_bit: int, pretrained: bool = False, channels_last: bool = False) -> HashEncoder:
    return HashEncoder(backbone, hash_bit, pretrained, channels_last, image_size=None)


def test_below_minimum_input_is_a_clear_error():
    net = HashNet("alexnet", 8)
    with pytest.raises(ValueError, match=r"alexnet needs inputs of at least 63x63 pixels, got \(62, 62\)"):
        net(torch.randn(2, 3, 62, 62))


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="unknown backbone 'resnet7'.*resnet18"):
        HashNet("resnet7", 8)


def test_hash_layer_init_and_output():
    torch.manual_seed(0)
    net = HashNet("resnet18", 64).eval()
    assert net.hash_layer.in_features == 512
    assert net.hash_layer.bias.abs().max() == 0
    assert 0.009 < net.hash_layer.weight.std().item() < 0.011
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net.hash_layer(net.backbone(x)))  # no activation: a method's code layer follows


def test_pretrained_offline_without_cache_names_file_and_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    name = Path(torchvision.models.get_model_weights("resnet18").DEFAULT.url).name
    with pytest.raises(RuntimeError) as err:
        HashNet("resnet18", 8, pretrained=True)
    message = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / name) in message
    assert "net.pretrained=false" in message


def test_pretrained_loads_cached_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    reference = torchvision.models.resnet18()
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / Path(url).name)
    net = HashNet("resnet18", 8, pretrained=True)
    assert torch.equal(net.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(net.backbone.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
