"""Every method through the plug-in: its config builds it, its loss is its pure function, its state is saved."""
from pathlib import Path

import pytest
import torch

from hashnet.methods import METHODS
from hashnet.methods.common import split_pairs
from hashnet.methods.csq import csq_loss, hash_centers
from hashnet.methods.dhn import dhn_loss
from hashnet.methods.dpsh import dpsh_loss
from hashnet.methods.dsh import dsh_loss
from hashnet.methods.greedyhash import greedyhash_loss, sign_ste
from hashnet.tasks.setup import build_model

from conftest import compose_config

BATCH = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
LABELS = torch.eye(10)[[0, 1, 2, 0, 1, 1, 3, 0]]


def method(name: str, *overrides: str, dataset: str = "digits"):
    cfg = compose_config("train", [f"method={name}", f"dataset={dataset}", "hash_bit=16", *overrides], Path("/tmp"))
    return build_model(cfg)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_config_builds_the_method_and_its_recipe_is_picked(name, tmp_path):
    cfg = compose_config("train", [f"method={name}"], tmp_path)
    model = build_model(cfg)
    assert model.method.name == name and type(model.method) is METHODS[name]
    assert cfg.max_steps == 250 and cfg.net.pretrained is False  # configs/dataset_recipe/digits.yaml


@pytest.mark.parametrize("name, loss", [("dhn", dhn_loss), ("dpsh", dpsh_loss), ("dsh", dsh_loss)])
def test_pairwise_methods_use_their_loss_on_the_batch_halves(name, loss):
    model = method(name)
    h = model.method(BATCH)
    assert torch.equal(h, BATCH)  # no output activation
    assert model.method.loss(h, LABELS) == loss(*split_pairs(h, LABELS, "halves"))  # the configured defaults
    everything = method(name, "method.pairs=all").method.loss(h, LABELS)
    assert everything == loss(h, h, LABELS, LABELS)


def test_greedyhash_classifies_the_sign_codes_with_its_own_layer():
    model = method("greedyhash")
    classifier = model.method.classifier
    assert classifier.weight.shape == (10, 16) and classifier.bias is None
    expected = greedyhash_loss(BATCH, classifier(sign_ste(BATCH)), LABELS, 0.1, multi_label=False)
    assert model.method.loss(BATCH, LABELS) == expected
    assert method("greedyhash", dataset="digits_multi").method.multi_label is True  # from the dataset config
    groups = model.configure_optimizers()["optimizer"].param_groups
    assert any(p is classifier.weight for p in groups[1]["params"])  # trained with the hash layer, at 10x


def test_csq_codes_are_tanh_and_its_centres_are_saved(tmp_path):
    model = method("csq")
    assert torch.equal(model.method(BATCH), torch.tanh(BATCH))
    assert torch.equal(model.method.centers, hash_centers(10, 16))
    torch.manual_seed(5)
    expected = csq_loss(torch.tanh(BATCH), LABELS, hash_centers(10, 16), 1e-4)
    torch.manual_seed(5)
    assert model.method.loss(torch.tanh(BATCH), LABELS) == expected
    assert torch.equal(model.state_dict()["method.centers"], hash_centers(10, 16))


def test_method_options_that_do_not_exist_are_refused():
    with pytest.raises(ValueError, match=r"method.pairs must be one of \['halves', 'all'\], got 'some'"):
        method("dsh", "method.pairs=some")


def test_an_unknown_method_lists_the_options(tmp_path):
    from hydra.errors import MissingConfigException
    with pytest.raises(MissingConfigException, match="(?s)Could not find 'method/dshh'.*csq.*dhn.*dpsh.*dsh.*greedyhash.*hashnet"):
        compose_config("train", ["method=dshh"], tmp_path)
