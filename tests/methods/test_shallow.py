"""Tests for the fitted methods (hashnet.methods.pca, lsh, pcah, itq, sh) against straightforward float64 numpy
implementations of the formulas in specs/methods-unsupervised.md, and their fit through a model's hash layer."""
import math

import numpy as np
import pytest
import torch

from hashnet.methods.itq import itq_encode, itq_fit, random_rotation
from hashnet.methods.lsh import lsh_encode, lsh_fit
from hashnet.methods.pca import pca_fit
from hashnet.methods.pcah import pcah_encode, pcah_fit
from hashnet.methods.sh import sh_encode, sh_fit
from hashnet.tasks.setup import build_model
from hashnet.training.fitting import fit_method
from hashnet.utils.errors import ConfigError
from hashnet.utils.signs import sign

from conftest import compose_config

RNG = np.random.default_rng(0)
SCALES = np.linspace(3.0, 0.5, 12)  # distinct variances: well-separated principal directions
X = RNG.standard_normal((300, 12)) * SCALES + RNG.standard_normal(12)
TEST = RNG.standard_normal((100, 12)) * SCALES
K = 8


def codes(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0, 1.0, -1.0)


def numpy_pca(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(np.cov(data, rowvar=False))
    P = vectors[:, np.argsort(-values, kind="stable")[:k]]
    for j in range(k):
        P[:, j] *= 1.0 if P[np.argmax(np.abs(P[:, j])), j] >= 0 else -1.0
    return data.mean(axis=0), P


@pytest.mark.parametrize("data", [X, X[:20].T], ids=["covariance", "gram"])  # n > d; n <= d: the n x n Gram matrix
def test_pca_directions_with_canonical_signs(data):
    mean, P = pca_fit(data, K)
    mean_ref, P_ref = numpy_pca(data, K)
    np.testing.assert_allclose(mean.numpy(), mean_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(P.numpy(), P_ref, rtol=0, atol=1e-8)
    assert (P.numpy()[np.abs(P.numpy()).argmax(axis=0), range(K)] > 0).all()


def test_more_bits_than_directions_is_refused_naming_hash_bit():
    with pytest.raises(ConfigError, match="hash_bit=16: PCA of 300 rows of 12 features gives at most 12"):
        pca_fit(X, 16)


def test_lsh_is_a_seeded_float32_draw_on_centred_features():
    W = torch.randn((K, 12), generator=torch.Generator().manual_seed(3), dtype=torch.float32).double().numpy()
    model = lsh_fit(X, K, seed=3)
    np.testing.assert_array_equal(model["W"].numpy(), W)
    np.testing.assert_array_equal(lsh_encode(model, TEST).numpy(), codes((TEST - X.mean(axis=0)) @ W.T))
    uncentred = lsh_fit(X, K, seed=3, centre=False)  # FIRe's form
    np.testing.assert_array_equal(lsh_encode(uncentred, TEST).numpy(), codes(TEST @ W.T))


def test_pcah_codes():
    mean, P = numpy_pca(X, K)
    np.testing.assert_array_equal(pcah_encode(pcah_fit(X, K), TEST).numpy(), codes((TEST - mean) @ P))


def test_random_rotation_is_the_sign_fixed_q_of_a_seeded_draw():
    G = torch.randn((K, K), generator=torch.Generator().manual_seed(5), dtype=torch.float32).double().numpy()
    Q, T = np.linalg.qr(G)
    np.testing.assert_allclose(random_rotation(K, 5).numpy(), Q * codes(np.diag(T)), rtol=0, atol=1e-12)


def test_itq_matches_gong_and_its_loss_never_rises():
    R0 = random_rotation(K, 1).numpy()
    mean, P = numpy_pca(X, K)
    V, R = (X - mean) @ P, R0
    for _ in range(50):
        U, _, Vh = np.linalg.svd(codes(V @ R).T @ V)
        R = Vh.T @ U.T  # orthogonal Procrustes: argmin over rotations of ||B - V R||
    model = itq_fit(X, K, iters=50, seed=1)
    np.testing.assert_allclose(model["R"].numpy(), R, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(itq_encode(model, TEST).numpy(), codes((TEST - mean) @ P @ R))
    losses = np.array(model["losses"])
    assert len(losses) == 51 and (np.diff(losses) <= 1e-9 * losses[0]).all() and losses[-1] < losses[0]
    assert math.isclose(losses[-1], float(((codes(V @ R) - V @ R) ** 2).sum()), rel_tol=1e-10)


def numpy_sh(data: np.ndarray, k: int, eps: float = 1e-7) -> dict:
    """Weiss's trainSH.m, line for line."""
    npca = min(k, data.shape[1])
    mean, P = numpy_pca(data, npca)
    V = (data - mean) @ P
    mn, mx = V.min(axis=0) - eps, V.max(axis=0) + eps
    R = mx - mn
    max_mode = np.ceil((k + 1) * R / R.max()).astype(int)
    modes = np.ones((max_mode.sum() - len(max_mode) + 1, npca), dtype=int)
    m = 0
    for i in range(npca):
        modes[m + 1:m + max_mode[i], i] = np.arange(2, max_mode[i] + 1)
        m += max_mode[i] - 1
    modes -= 1
    eigenvalues = ((modes * (np.pi / R)) ** 2).sum(axis=1)
    return {"mean": mean, "P": P, "mn": mn, "R": R, "modes": modes[np.argsort(eigenvalues, kind="stable")[1:k + 1]]}


@pytest.mark.parametrize("bits", [K, 16])  # 16 > d = 12: several modes a dimension (Weiss)
def test_sh_modes_and_codes(bits):
    ref = numpy_sh(X, bits)
    model = sh_fit(X, bits)
    np.testing.assert_array_equal(model["modes"].numpy(), ref["modes"])
    v = (TEST - ref["mean"]) @ ref["P"] - ref["mn"]
    y = np.prod(np.cos(ref["modes"][None] * np.pi * v[:, None, :] / ref["R"]), axis=2)
    np.testing.assert_array_equal(sh_encode(model, TEST).numpy(), codes(y))


@pytest.mark.parametrize("name, fit, encode", [("lsh", lsh_fit, lsh_encode), ("pcah", pcah_fit, pcah_encode),
                                               ("itq", itq_fit, itq_encode), ("sh", sh_fit, sh_encode)])
def test_a_model_fitted_on_pixels_codes_images_as_the_functions_do(name, fit, encode, tmp_path):
    # The pixels are the eval-transform images in [0, 1], flattened; the fit goes through the model's hash layer.
    torch.manual_seed(0)
    overrides = [f"method={name}", "hash_bit=8", "dataset.crop_size=8"]  # 8 x 8 images: 192 features
    model = build_model(compose_config("train", overrides, tmp_path)).eval()
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    fit_method(model, [(images[:30], torch.zeros(30, 10), torch.arange(30))], seed=4)
    pixels = images.double().flatten(1) / 255
    expected = encode(fit(pixels[:30], 8, seed=4) if name in ("lsh", "itq") else fit(pixels[:30], 8), pixels)
    with torch.no_grad():
        assert torch.equal(sign(model(images)).double(), expected)


@pytest.mark.usefixtures("one_thread")
def test_features_of_a_trained_checkpoint_are_its_backbone(tmp_path):
    # ITQ on a supervised run's features: the fit loads that run's backbone, then fits on its pooled features.
    torch.manual_seed(0)
    trained = build_model(compose_config("train", ["method=dsh", "hash_bit=8"], tmp_path))
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": trained.state_dict(), "hyper_parameters": dict(trained.hparams)}, path)
    model = build_model(compose_config("train", ["method=itq", "hash_bit=8", f"method.features={path}"], tmp_path))
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    fit_method(model, [(images, torch.zeros(12, 10), torch.arange(12))], seed=0)
    for key, value in trained.net.backbone.state_dict().items():
        assert torch.equal(model.net.backbone.state_dict()[key], value), key
    assert model.net.hash_layer.in_features == 512  # ResNet-18's pooled features, not pixels
    other = build_model(compose_config("train", ["method=itq", "net=mobilenet_v3_small", f"method.features={path}"],
                                       tmp_path))
    with pytest.raises(ConfigError, match=f"method.features={path}: its backbone does not fit this net"):
        fit_method(other, [(images, torch.zeros(12, 10), torch.arange(12))], seed=0)
