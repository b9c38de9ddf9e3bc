"""HashNet (hashnet.methods.hashnet): the loss, the continuation schedule and the method's options."""
import math

import numpy as np
import pytest
import torch

from hashnet.methods.hashnet import Continuation, HashNet, beta_at, pairwise_loss
from hashnet.utils.errors import ConfigError

SCHEDULE = {"init_scale": 1.0, "gamma": 0.005, "power": 0.5, "step_size": 200}  # configs/method/hashnet.yaml's


def test_hand_computed_weighted_loss():
    # theta = 0.5 * <h1, h2> = [1, 0]; the first pair is similar, the second is not.
    h1 = torch.tensor([[1.0, 1.0]])
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[1, 0], [0, 1]])
    similar = math.log(1 + math.e) - 1
    dissimilar = math.log(2)
    assert math.isclose(pairwise_loss(h1, h2, y1, y2, 0.5, 1.0, 15.0).item(), (similar + dissimilar) / 2, rel_tol=1e-6)
    weighted = pairwise_loss(h1, h2, y1, y2, 0.5, 2.0, 15.0).item()
    assert math.isclose(weighted, (2 * similar + dissimilar) / 3, rel_tol=1e-6)


def test_above_threshold_uses_theta_times_one_minus_s():
    # theta = [20, -20]: the dissimilar pair at 20 is above the threshold and costs exactly 20.
    h1 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    h2 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[0, 1], [1, 0]])
    below = math.log(1 + math.exp(-20)) + 20  # similar pair at theta = -20
    loss = pairwise_loss(h1, h2, y1, y2, 10.0, 1.0, 15.0).item()
    assert math.isclose(loss, (20 + below) / 2, rel_tol=1e-12)
    # Lowering the threshold past 20 switches the first pair to softplus: log(1 + e^20).
    softplus = pairwise_loss(h1, h2, y1, y2, 10.0, 1.0, 25.0).item()
    assert math.isclose(softplus, (math.log1p(math.exp(20)) + below) / 2, rel_tol=1e-12)


def test_finite_loss_and_gradients_for_saturated_long_codes():
    torch.manual_seed(0)
    k = 4096
    z = torch.randn(8, k, requires_grad=True)
    codes = torch.tanh(1e6 * z)  # beta huge: codes are exactly +-1
    labels = torch.eye(4)[torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])]
    loss = pairwise_loss(codes[:4], codes[4:], labels[:4], labels[4:], 1.0, 1.0, 15.0)  # |theta| up to 4096
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(z.grad).all()


def test_all_pairs_of_one_batch_match_an_explicit_pair_sum_with_the_diagonal():
    torch.manual_seed(1)
    h = torch.tanh(torch.randn(5, 8, dtype=torch.float64))
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1]])
    alpha, class_num = 0.7, 3.0
    total, weight = 0.0, 0.0
    for i in range(5):
        for j in range(5):  # i == j included, as every pairwise method's pairs=all
            theta = alpha * float(h[i] @ h[j])
            s = float(y[i] @ y[j] > 0)
            w = class_num if s else 1.0
            total += w * (math.log1p(math.exp(theta)) - s * theta)
            weight += w
    assert math.isclose(pairwise_loss(h, h, y, y, alpha, class_num, 15.0).item(), total / weight, rel_tol=1e-12)
    assert hashnet(pairs="all", class_num=class_num, alpha=alpha).loss(h, y).item() == pytest.approx(total / weight)


# ---- continuation ----


@pytest.mark.parametrize(
    "step, beta",
    [(0, 1.0), (199, 1.0), (200, math.sqrt(2.0)), (399, math.sqrt(2.0)), (9000, math.sqrt(46.0)), (9199, math.sqrt(46.0))],
)
def test_configured_schedule(step, beta):
    assert math.isclose(beta_at(step, **SCHEDULE), beta, rel_tol=1e-12)


def test_step_9000_is_about_6_78():
    assert round(beta_at(9000, **SCHEDULE), 2) == 6.78


def test_custom_schedule():
    # t = 100 * floor(250 / 100) = 200: 2 * (1 + 0.01 * 200)^1 = 6
    assert math.isclose(beta_at(250, init_scale=2.0, gamma=0.01, power=1.0, step_size=100), 6.0)




def hashnet(**options) -> HashNet:
    """HashNet as configs/method/hashnet.yaml builds it, 8 bits, 10 classes, with options changed."""
    config = {"alpha": None, "class_num": 10.0, "weighted": True, "threshold": 15.0, "pairs": "halves",
              "continuation": True, **SCHEDULE}
    return HashNet(8, 10, False, **{**config, **options})


def test_code_layer_is_tanh_of_beta_z_and_saturates_to_sign():
    method = hashnet()
    z = torch.tensor([[-2.0, -1e-3, 0.5, 3.0]])
    assert torch.allclose(method(z), torch.tanh(z))
    method.beta.fill_(1e6)
    assert torch.equal(method(z), torch.tensor([[-1.0, -1.0, 1.0, 1.0]]))
    assert method.state_dict()["beta"].item() == 1e6  # saved with the checkpoint


def test_continuation_sets_and_logs_beta_from_the_step():
    method, logged = hashnet(), {}

    class Trainer:
        global_step = 9000

    class Module:
        def log(self, name, value, **kwargs):
            logged[name] = value

    callback, = method.callbacks()
    assert isinstance(callback, Continuation)
    callback.on_train_batch_start(Trainer(), Module(), None, 0)
    assert math.isclose(method.beta.item(), math.sqrt(46.0), rel_tol=1e-6) and logged["train/beta"] == beta_at(9000, **SCHEDULE)


def test_sgn_ablation_keeps_beta_at_init_scale():
    assert hashnet(continuation=False, init_scale=1.5).beta_at(9000) == 1.5
    assert math.isclose(hashnet().beta_at(9000), math.sqrt(46.0))


def test_w_ablation_weighs_every_pair_one():
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [-1.0, 1.0]])  # similar pairs lose 0.47, dissimilar 0.79
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 0]])
    weighted, unweighted = hashnet(class_num=10.0), hashnet(class_num=10.0, weighted=False)
    expected = pairwise_loss(h[:2], h[2:], labels[:2], labels[2:], 10 / 8, 1.0, 15.0)
    assert unweighted.loss(h, labels) == expected
    assert weighted.loss(h, labels) == pairwise_loss(h[:2], h[2:], labels[:2], labels[2:], 10 / 8, 10.0, 15.0)
    assert weighted.loss(h, labels) != expected


def test_w_ablation_that_changes_nothing_is_refused():
    with pytest.raises(ConfigError, match="method.weighted=false \\(HashNet-W\\) changes nothing here: method.class_num "
                                          "is already 1"):
        hashnet(class_num=1.0, weighted=False)


@pytest.mark.parametrize("key, value, message", [
    ("class_num", "abc", "method.class_num='abc': it must be a positive number or auto"),
    ("class_num", -1.0, "method.class_num=-1.0: it must be a positive number or auto"),
    ("alpha", 0.0, r"method.alpha=0.0: it must be a number > 0 -- pass e.g. method.alpha=1.25"),
    ("step_size", 0, r"method.step_size=0: it must be a number >= 1 -- pass e.g. method.step_size=200"),
    ("pairs", "some", r"method.pairs='some': it must be one of \['halves', 'all', 'bank'\] -- pass e.g. method.pairs=halves"),
])
def test_bad_settings_are_refused_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        hashnet(**{key: value})


def test_class_num_auto_is_resolved_from_the_labels():
    labels = np.eye(2, dtype=np.uint8)[[0, 0, 1, 1]]  # 12 ordered pairs, 4 similar: |S|/|S1| = 3
    config = {"class_num": "auto", "weighted": True}
    assert HashNet.resolve(config, lambda: labels) == {"class_num": 3.0, "weighted": True}
    # HashNet-W resolves it too, so that a dataset where it is 1 (HashNet-W = HashNet) is refused
    assert HashNet.resolve({"class_num": "auto", "weighted": False}, lambda: labels)["class_num"] == 3.0
    assert HashNet.resolve({"class_num": 2.0}, lambda: 1 / 0) == {"class_num": 2.0}  # labels not read
