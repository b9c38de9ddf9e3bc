"""Every method through the registry: its config file builds it, its loss is its pure function, its own state is
trained and saved; the registry is what lists methods (configs, report)."""
import inspect
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hashnet.methods import METHODS
from hashnet.methods.adsh import adsh_loss, adsh_update_codes
from hashnet.methods.common import split_pairs
from hashnet.methods.csq import csq_loss, hash_centers
from hashnet.methods.dbdh import dbdh_loss
from hashnet.methods.dch import dch_loss
from hashnet.methods.dfh import dfh_codes, dfh_loss, dfh_update_centres
from hashnet.methods.dhn import dhn_loss
from hashnet.methods.dpn import dpn_loss, dpn_targets
from hashnet.methods.dpsh import dpsh_loss
from hashnet.methods.dsdh import dsdh_codes, dsdh_loss
from hashnet.methods.dsh import dsh_loss
from hashnet.methods.dtsh import dtsh_loss
from hashnet.methods.greedyhash import greedyhash_loss, sign_ste
from hashnet.methods.idhn import idhn_loss
from hashnet.methods.jmlh import jmlh_loss
from hashnet.methods.mihash import mihash_codes, mihash_loss
from hashnet.methods.orthohash import orthohash_codebook, orthohash_loss
from hashnet.utils.errors import ConfigError

from conftest import CONFIGS, compose_config, resolved_model

BATCH = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
LABELS = torch.eye(10)[[0, 1, 2, 0, 1, 1, 3, 0]]
MULTI_LABELS = LABELS + torch.eye(10)[[5, 1, 0, 0, 3, 4, 3, 9]]  # several 1s in most rows (max 1: still 0/1)
MULTI_LABELS = MULTI_LABELS.clamp(max=1)
# keyword arguments of a pure loss that are not settings of the method (its config file holds every other one)
NOT_SETTINGS = {"generator", "multi_label", "regularize_u2"}


@pytest.fixture(autouse=True)
def data_dir(digits_root, monkeypatch):
    monkeypatch.setenv("HASHNET_DATA_DIR", str(digits_root.parent))  # class_num=auto reads the digits labels


def method(name: str, *overrides: str, dataset: str = "digits"):
    cfg = compose_config("train", [f"method={name}", f"dataset={dataset}", "hash_bit=16", *overrides], Path("/tmp"))
    return resolved_model(cfg)


def test_every_registered_method_has_a_config_file_and_hashnet_comes_first():
    assert sorted(p.stem for p in (CONFIGS / "method").glob("*.yaml")) == sorted(METHODS)
    assert next(iter(METHODS)) == "hashnet"


@pytest.mark.parametrize("name", METHODS)
def test_the_config_builds_the_registered_class(name, tmp_path):
    model = resolved_model(compose_config("train", [f"method={name}"], tmp_path))
    assert model.method.name == name and type(model.method) is METHODS[name]


@pytest.mark.parametrize("name, optimizer", [("hashnet", "SGD"), ("dhn", "Adam"), ("dpsh", "Adam"), ("csq", "SGD")])
def test_a_method_file_picks_its_optimiser_and_the_command_line_wins(name, optimizer, tmp_path):
    cfg = compose_config("train", [f"method={name}"], tmp_path)
    built = resolved_model(cfg).configure_optimizers()["optimizer"]
    assert type(built).__name__ == optimizer
    assert built.param_groups[0]["lr"] == {"SGD": 2e-3, "Adam": 1e-4}[optimizer]
    for overrides in (["optim=rmsprop", f"method={name}"], [f"method={name}", "optim=rmsprop"]):
        chosen = resolved_model(compose_config("train", overrides, tmp_path)).configure_optimizers()["optimizer"]
        assert type(chosen).__name__ == "RMSprop" and chosen.param_groups[0]["lr"] == 1e-5


@pytest.mark.parametrize("name, loss", [("dhn", dhn_loss), ("dpsh", dpsh_loss), ("dsh", dsh_loss), ("csq", csq_loss),
                                        ("greedyhash", greedyhash_loss), ("dch", dch_loss), ("dtsh", dtsh_loss),
                                        ("orthohash", orthohash_loss), ("dpn", dpn_loss), ("idhn", idhn_loss)])
def test_config_holds_the_losss_defaults(name, loss, tmp_path):
    config = compose_config("train", [f"method={name}"], tmp_path).method
    defaults = {key: parameter.default for key, parameter in inspect.signature(loss).parameters.items()
                if parameter.default is not inspect.Parameter.empty and key not in NOT_SETTINGS}
    assert {key: value for key, value in config.items() if key not in ("name", "pairs", "seed")} == defaults


@pytest.mark.parametrize("name, functions, own", [  # own: the settings that are no function's default
    ("dbdh", [dbdh_loss], {}), ("mihash", [mihash_codes, mihash_loss], {"sharpness": 10.0}), ("jmlh", [jmlh_loss], {"stochastic": True}),
    ("dfh", [dfh_codes, dfh_update_centres, dfh_loss], {}),
    ("dsdh", [dsdh_codes, dsdh_loss], {"dcc_passes": 10, "quantization_weight": "auto"}),  # passes; auto: eta K / 2N
    ("adsh", [adsh_loss, adsh_update_codes], {"soft_constraint": "auto", "epochs_per_update": 1})])
def test_config_holds_the_functions_defaults(name, functions, own, tmp_path):
    config = compose_config("train", [f"method={name}"], tmp_path).method
    defaults = {key: parameter.default for function in functions
                for key, parameter in inspect.signature(function).parameters.items()
                if parameter.default is not inspect.Parameter.empty and key not in NOT_SETTINGS | {"b2", "passes", "w"}}
    assert {key: value for key, value in config.items() if key not in ("name", "pairs")} == {**defaults, **own}


@pytest.mark.parametrize("name, loss, code_layer, pairs", [  # code_layer None: h = z
    ("dhn", dhn_loss, None, "halves"), ("dpsh", dpsh_loss, None, "halves"), ("dsh", dsh_loss, None, "halves"),
    ("dch", dch_loss, torch.tanh, "all"), ("dtsh", dtsh_loss, None, "all"), ("idhn", idhn_loss, F.softsign, "all")])
def test_pairwise_methods_use_their_code_layer_and_their_loss_on_their_pairs(name, loss, code_layer, pairs):
    model = method(name)
    h = model.method(BATCH)
    assert torch.equal(h, BATCH if code_layer is None else code_layer(BATCH))
    assert model.method.pairs == pairs  # the configured default
    assert model.method.loss(h, LABELS) == loss(*split_pairs(h, LABELS, pairs))  # and the loss's default settings
    for other in ("halves", "all"):  # bank: tests/methods/test_bank.py
        assert method(name, f"method.pairs={other}").method.loss(h, LABELS) == loss(*split_pairs(h, LABELS, other))


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


def test_orthohash_codes_are_its_batch_norm_trained_with_the_hash_layer_and_saved():
    model = method("orthohash", "hash_bit=12", "method.seed=3")  # K = 12: a seeded Bernoulli codebook
    batch_norm = model.method.batch_norm
    assert torch.equal(model.method(BATCH[:, :12]), batch_norm(BATCH[:, :12]))
    expected = orthohash_loss(BATCH[:, :12], LABELS, orthohash_codebook(10, 12, seed=3), 8.0, 0.3)
    assert model.method.loss(BATCH[:, :12], LABELS) == expected
    state = model.state_dict()
    assert torch.equal(state["method.codebook"], orthohash_codebook(10, 12, seed=3))
    assert {"method.batch_norm.running_mean", "method.batch_norm.running_var", "method.batch_norm.weight"} <= set(state)
    groups = model.configure_optimizers()["optimizer"].param_groups
    assert any(p is batch_norm.weight for p in groups[1]["params"])  # trained with the hash layer, at 10x


def test_dpn_codes_are_the_outputs_and_its_targets_are_saved():
    model = method("dpn", "method.seed=3")
    assert torch.equal(model.method(BATCH), BATCH)
    assert model.method.loss(BATCH, LABELS) == dpn_loss(BATCH, LABELS, dpn_targets(10, 16, seed=3), 1.0)
    assert torch.equal(model.state_dict()["method.targets"], dpn_targets(10, 16, seed=3))


def test_classifier_codes_and_its_refusal_of_fewer_bits_than_classes():
    model = method("classifier", dataset="digits_multi")
    assert model.method.multi_label is True  # from the dataset config: BCE and a threshold at probability 0.5
    with pytest.raises(ConfigError, match="pass hash_bit=16 "):
        method("classifier", "hash_bit=8")


@pytest.mark.parametrize("name, override, message", [
    ("dsh", "method.pairs=some", r"method.pairs='some': it must be one of \['halves', 'all', 'bank'\]"),
    ("dhn", "method.quantization_weight=-1", r"method.quantization_weight=-1: it must be a number >= 0"),
    ("csq", "method.quantization_weight=abc", r"method.quantization_weight='abc': it must be a number >= 0"),
    ("greedyhash", "method.penalty_weight=-0.5", r"method.penalty_weight=-0.5: it must be a number >= 0"),
])
def test_a_method_refuses_its_own_bad_settings_by_key(name, override, message):
    with pytest.raises(ConfigError, match=message):
        method(name, override)


def test_an_unknown_method_lists_the_options(tmp_path):
    from hydra.errors import MissingConfigException
    with pytest.raises(MissingConfigException, match="(?s)Could not find 'method/dshh'.*csq.*dhn.*dpsh.*dsh.*greedyhash.*hashnet"):
        compose_config("train", ["method=dshh"], tmp_path)
