"""scSMD: its losses against hand-computed values, its gate, and short fits on real counts."""

import numpy as np
import pytest
import torch
from conftest import SHARED
from quality import scsmd_baron

from scatlas.models import Scsmd, ScsmdParams
from scatlas.nn import fuzzy_memberships, pairwise_similarity_loss
from scatlas.nn.count_likelihood import nb_nll
from scatlas.nn.scsmd import N_PIXELS, ConvNBAutoencoder, MultiDilatedGate

DENG = SHARED / "data" / "benchmarks" / "deng_subset_133.h5ad"
TINY = {
    "pretrain_epochs": 2,
    "cluster_epochs": 2,
    "cellnet_epochs": 2,
    "finetune_epochs": 2,
    "min_steps": 1,
    "kmeans_n_init": 2,
    "centre_interval": 1,
}


@pytest.fixture(scope="module")
def deng(deng_counts):
    return deng_counts


def tiny_fit(counts, seed=0, device="cpu", **changes):
    return Scsmd(5, ScsmdParams(**{**TINY, **changes}), seed=seed, device=device).fit(counts)


def test_fuzzy_memberships_match_hand_computed_values():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    centres = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    # cell 0: squared distances 1 and 9; m = 1.5 → d^-2 = 1 and 1/81; m = 2 → d^-1 = 1 and 1/9
    np.testing.assert_allclose(fuzzy_memberships(z, centres, 1.5)[0], [81 / 82, 1 / 82], rtol=1e-6)
    np.testing.assert_allclose(fuzzy_memberships(z, centres, 2.0)[0], [9 / 10, 1 / 10], rtol=1e-6)
    # cell 1 lies halfway: equal memberships; a cell on a centre belongs to it alone
    np.testing.assert_allclose(fuzzy_memberships(z, centres, 1.5)[1], [0.5, 0.5], rtol=1e-6)
    assert fuzzy_memberships(centres, centres, 1.5)[0, 0].item() == pytest.approx(1.0)


def test_pair_loss_pulls_similar_pairs_together_pushes_dissimilar_apart_and_skips_the_rest():
    q = torch.full((3, 2), 0.5)  # q_iᵀq_j = 0.5 for every pair
    similarity = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    # pairs ≥ 0.8: the 3 self-pairs and (0, 1) twice → 1 − 0.5 each; ≤ 0.2: (0, 2) twice → 0.5 each;
    # (1, 2) at 0.5 does not count
    assert pairwise_similarity_loss(q, similarity, 0.8).item() == pytest.approx((5 * 0.5 + 2 * 0.5) / 9)
    one_hot = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert pairwise_similarity_loss(one_hot, one_hot @ one_hot.T, 0.8).item() == 0.0


def test_cluster_losses_are_the_membership_weighted_sums_of_each_cells_terms():
    torch.manual_seed(0)
    model = Scsmd(2, ScsmdParams(latent=4), device="cpu")
    model.autoencoder = ConvNBAutoencoder(latent=4).eval()
    model.centres = torch.randn(2, 4)
    x = torch.rand(3, N_PIXELS) * 3
    weights = torch.tensor([[1.0, 0.0], [0.25, 0.5], [0.0, 0.3]])
    with torch.no_grad():
        losses = model.cluster_losses(x, weights)
        u, reconstruction, mean, dispersion = model.autoencoder(x)
        rec = (reconstruction - x).square().sum(dim=1)
        nb = nb_nll(torch.round(x), mean, dispersion).sum(dim=1)  # NB of the rounded values (the paper's x')
        centre = torch.cdist(u, model.centres).square()
    for k in range(2):
        assert losses["rec"][k].item() == pytest.approx((weights[:, k] * rec).sum().item(), rel=1e-5)
        assert losses["nb"][k].item() == pytest.approx((weights[:, k] * nb).sum().item(), rel=1e-5)
        assert losses["centre"][k].item() == pytest.approx((weights[:, k] * centre[:, k]).sum().item(), rel=1e-5)


def test_the_gate_scales_each_feature_by_one_plus_a_sigmoid_at_its_dilation_rates():
    torch.manual_seed(0)
    gate = MultiDilatedGate(4, (4, 6, 8, 10)).eval()
    x = torch.randn(2, 4, 14, 14)
    with torch.no_grad():
        ratio = gate(x) / x
    assert ((ratio > 1) & (ratio < 2)).all()  # x + x·g with g in (0, 1)
    other = MultiDilatedGate(4, (2, 4, 6, 8)).eval()
    other.load_state_dict(gate.state_dict())  # the same weights, other dilation rates
    with torch.no_grad():
        assert not torch.allclose(other(x), gate(x))


def test_autoencoder_maps_cells_to_the_latent_space_and_back_with_positive_nb_parameters():
    model = ConvNBAutoencoder(latent=10).eval()
    with torch.no_grad():
        u, reconstruction, mean, dispersion = model(torch.rand(5, N_PIXELS))
    assert u.shape == (5, 10)
    assert reconstruction.shape == mean.shape == dispersion.shape == (5, N_PIXELS)
    assert (mean > 0).all() and (dispersion > 0).all()


@pytest.mark.slow
def test_same_seed_gives_identical_labels_and_each_stage_runs(deng, device):
    counts, _ = deng
    first, second = tiny_fit(counts, seed=3, device=device), tiny_fit(counts, seed=3, device=device)
    assert np.array_equal(first.labels_, second.labels_)
    assert np.array_equal(first.embedding_, second.embedding_)
    assert first.embedding_.shape == (counts.shape[0], 10) and np.isfinite(first.embedding_).all()
    assert not np.array_equal(first.embedding_, tiny_fit(counts, seed=4, device=device).embedding_)
    assert [step["stage"] for step in first.history] == ["pretrain"] * 2 + ["fuzzy"] * 2 + ["cellnet"] * 2 + [
        "finetune"
    ] * 2


@pytest.mark.slow
def test_per_cluster_steps_change_module_1_after_the_same_pretraining(deng):
    counts, _ = deng
    summed, per_cluster = tiny_fit(counts), tiny_fit(counts, per_cluster_steps=True)
    # the same pretraining, then other updates in Module 1
    assert summed.history[:2] == per_cluster.history[:2]
    assert not np.allclose(summed.embedding_, per_cluster.embedding_)


@pytest.mark.slow
def test_save_and_load_give_the_same_clusters(deng, tmp_path, device):
    counts, _ = deng
    model = tiny_fit(counts, device=device)
    model.save(tmp_path / "scsmd")
    loaded = Scsmd.load(tmp_path / "scsmd", device=device)
    np.testing.assert_allclose(loaded.transform(counts), model.transform(counts), atol=1e-5)
    assert np.array_equal(loaded.predict(counts), model.predict(counts))
    assert np.array_equal(model.predict(counts), model.labels_)
    assert list(loaded.gene_names) == list(model.gene_names) and len(model.gene_names) == N_PIXELS


def test_bad_parameters_are_refused():
    with pytest.raises(KeyError, match="similarity_threshold must be in"):
        ScsmdParams.from_dict({"similarity_threshold": 0.3})
    with pytest.raises(KeyError, match="unknown scSMD parameter"):
        ScsmdParams.from_dict({"dilation": [1, 2]})


@pytest.mark.slow
def test_a_short_fit_learns_the_cell_types_of_a_baron_subsample(device):
    figures = scsmd_baron(seed=0, device=device)  # 400 cells of 13 types; labels at random or one cluster give 0
    # lowest of seeds 0-4 x 1/2 threads x native/avx2/compatible kernels: 0.374; 0.25 leaves a third
    # (benchmarks/results/2026-12-07_3fd70ce/test_margins.tsv)
    assert figures["scsmd"] >= 0.25
