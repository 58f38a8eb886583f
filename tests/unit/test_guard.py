"""The clustering guard (scatlas.cluster.guard): falls back to PCA + K-means only when the deep partition is
clearly worse, and says so (its keep case on real data: test_scdmac's baron subsample test)."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from quality import DENG
from sklearn.metrics import adjusted_rand_score

from scatlas.cluster import cluster_counts, guard_path, run_clustering
from scatlas.cluster.data import read_counts
from scatlas.cluster.guard import decide, guard


def _deng():
    matrix = read_counts(DENG)
    return matrix.counts, ad.read_h5ad(DENG).obs["label"].to_numpy()[matrix.cell_index]


def test_a_partition_that_learned_nothing_falls_back_to_pca_kmeans():
    counts, truth = _deng()
    rng = np.random.default_rng(0)
    noise_labels = rng.integers(0, 5, counts.shape[0])
    noise_embedding = rng.normal(size=(counts.shape[0], 10)).astype(np.float32)
    labels, embedding, decision = guard(counts, noise_labels, noise_embedding, 5, seed=0)
    expected, pca = cluster_counts("pca-kmeans", counts, 5, seed=0)
    assert decision["choice"] == "pca-kmeans", decision
    assert np.array_equal(labels, expected) and embedding.shape == pca.shape
    assert adjusted_rand_score(truth, labels) > adjusted_rand_score(truth, noise_labels) + 0.1


def test_the_rule_keeps_the_deep_partition_within_the_margin():
    close = {"cross_deep": 0.20, "cross_pca": 0.24, "member_agreement": 0.5, "pca_stability": 0.9}
    assert decide(close)[0] == "deep"
    assert decide(close | {"cross_pca": 0.26})[0] == "pca-kmeans"


def test_scatlas_cluster_writes_the_decision_beside_the_clusters(tmp_path):
    counts, truth = _deng()
    path = tmp_path / "deng.h5ad"
    ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame({"label": truth})).write_h5ad(path)
    tiny = {"n_top_genes": 300, "zinb_epochs": 1, "mae_epochs": 1, "cluster_epochs": 1, "min_steps": 1, "ensemble": 1}
    run_clustering("scdmac", path, 5, tmp_path / "out.tsv", seed=0, device="cpu", params=tiny)
    decision = json.loads(guard_path(tmp_path / "out.tsv").read_text())
    assert decision["choice"] in ("deep", "pca-kmeans") and "silhouette" in decision["reason"]
    run_clustering("scdmac", path, 5, tmp_path / "off.tsv", seed=0, device="cpu", params=tiny | {"guard": False})
    assert not guard_path(tmp_path / "off.tsv").exists()
