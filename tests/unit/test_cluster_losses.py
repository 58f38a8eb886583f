"""The count likelihoods and clustering terms against values worked out by hand (and scipy)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from scatlas.nn import ZINBLoss, dec_target, inflate, nb_nll, student_t_assignment, zinb_nll
from scatlas.nn.clustering import kl_divergence, soft_kmeans_loss, weighted_centres


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_zinb_at_zero_mixes_dropout_and_nb_zero():
    # mu = 2, theta = 1: NB(0) = (1 / (1 + 2))^1 = 1/3; P(0) = 0.3 + 0.7 / 3 = 0.53333
    assert zinb_nll(t(0.0), t(2.0), t(1.0), t(0.3)).item() == pytest.approx(-math.log(0.3 + 0.7 / 3), abs=1e-6)
    assert -math.log(0.3 + 0.7 / 3) == pytest.approx(0.628609, abs=1e-6)


def test_zinb_above_zero_is_the_scaled_nb():
    # NB(3; mu 2, theta 1) = Γ(4) / (Γ(1) 3!) · (1/3)^1 · (2/3)^3 = 8/81; times (1 - pi) = 0.7
    assert zinb_nll(t(3.0), t(2.0), t(1.0), t(0.3)).item() == pytest.approx(-math.log(0.7 * 8 / 81), abs=1e-6)
    assert nb_nll(t(3.0), t(2.0), t(1.0)).item() == pytest.approx(-math.log(8 / 81), abs=1e-6)


def test_nb_matches_scipy_over_a_range_of_counts_means_and_dispersions():
    y, mu, theta = np.meshgrid(np.arange(0, 40.0, 3), [0.05, 1.0, 7.5, 300.0], [0.1, 2.0, 50.0])
    expected = -stats.nbinom.logpmf(y, theta, theta / (theta + mu))
    observed = nb_nll(torch.from_numpy(y), torch.from_numpy(mu), torch.from_numpy(theta)).numpy()
    np.testing.assert_allclose(observed, expected, rtol=1e-5, atol=1e-6)


def test_zinb_loss_ridge_and_nb_mode():
    y, mu, theta, pi = t(0.0, 5.0), t(2.0, 2.0), t(1.0, 1.0), t(0.3, 0.3)
    plain = ZINBLoss()(y, mu, theta, pi)
    assert ZINBLoss(ridge=1.0)(y, mu, theta, pi).item() == pytest.approx(plain.item() + 0.09, abs=1e-9)
    assert ZINBLoss()(y, mu, theta).item() == pytest.approx(nb_nll(y, mu, theta).mean().item())


def test_extreme_values_stay_finite():
    loss = zinb_nll(t(0.0, 1e5, 3.0), t(1e-5, 1e6, 1e6), t(1e-4, 1e4, 1e-4), t(1e-6, 0.5, 0.999))
    assert torch.isfinite(loss).all()


def test_dec_target_sharpens_and_balances():
    # f = (1.4, 0.6); row 2: (0.25/1.4, 0.25/0.6) normalised = (0.3, 0.7)
    p = dec_target(t(0.9, 0.1, 0.5, 0.5).reshape(2, 2))
    np.testing.assert_allclose(p[1].numpy(), [0.3, 0.7], atol=1e-9)
    row = np.array([0.81 / 1.4, 0.01 / 0.6])  # q² / f for the confident cell
    np.testing.assert_allclose(p[0].numpy(), row / row.sum())
    assert p[0, 0] > 0.9  # a confident cell becomes more confident


def test_inflation_sharpens_rows():
    # (0.6^2, 0.4^2) / (0.36 + 0.16)
    np.testing.assert_allclose(inflate(t(0.6, 0.4).reshape(1, 2), 2.0).numpy(), [[0.36 / 0.52, 0.16 / 0.52]])
    np.testing.assert_allclose(inflate(t(0.6, 0.4).reshape(1, 2), 1.0).numpy(), [[0.6, 0.4]])


def test_student_t_and_soft_kmeans_by_hand():
    z, centres = t(0.0, 0.0).reshape(1, 2), t(1.0, 0.0, 0.0, 2.0).reshape(2, 2)
    # kernels (1 + 1)^-1 = 0.5 and (1 + 4)^-1 = 0.2
    np.testing.assert_allclose(student_t_assignment(z, centres).numpy(), [[0.5 / 0.7, 0.2 / 0.7]])
    # softmax(-1, -4) = (e^-1, e^-4) / sum; without inflation the loss is Σ w d
    w = np.exp([-1.0, -4.0]) / np.exp([-1.0, -4.0]).sum()
    assert soft_kmeans_loss(z, centres, inflation=1.0).item() == pytest.approx(w[0] * 1 + w[1] * 4)
    np.testing.assert_allclose(
        weighted_centres(t(0, 0, 2, 2).reshape(2, 2), t(1, 0, 1, 1).reshape(2, 2)).numpy(), [[1.0, 1.0], [2.0, 2.0]]
    )
    assert kl_divergence(t(0.5, 0.5).reshape(1, 2), t(0.5, 0.5).reshape(1, 2)).item() == pytest.approx(0.0)
