"""The quality figures the model tests assert on, each computed in one place.

A test calls a probe and compares its figures with a threshold; ``benchmarks/test_margins.py`` runs the
same probes over seeds, thread counts and CPU kernel sets, so that every threshold sits below the
lowest value measured (``benchmarks/results/*/test_margins.tsv``).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
from conftest import SHARED
from sklearn.metrics import adjusted_rand_score

BENCHMARKS = SHARED / "data" / "benchmarks"
DENG = BENCHMARKS / "deng_subset_133.h5ad"
# the workflow test's scDMAC: a few epochs, enough to find some of deng's stages
SCDMAC_TINY = {"n_top_genes": 300, "zinb_epochs": 2, "mae_epochs": 3, "cluster_epochs": 1, "min_steps": 1}


def baron_subsample(n_cells: int = 400, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """A random subsample of baron_mouse (13 pancreas types): raw counts without all-zero genes, and labels."""
    adata = ad.read_h5ad(BENCHMARKS / "baron_mouse.h5ad")
    cells = np.sort(np.random.default_rng(seed).choice(adata.n_obs, n_cells, replace=False))
    counts = sp.csr_matrix(adata.X[cells], dtype=np.float32)
    counts = counts[:, np.flatnonzero(np.asarray(counts.sum(axis=0)).ravel() > 0)]
    return counts, adata.obs["label"].to_numpy()[cells]


def ari_of(method: str, counts, truth, seed: int, **options) -> float:
    from scatlas.cluster import cluster_counts

    labels, _ = cluster_counts(method, counts, len(set(truth)), seed=seed, **options)
    return float(adjusted_rand_score(truth, labels))


def scsmd_baron(seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """scSMD after a short fit on 400 baron_mouse cells, and PCA + K-means on the same cells."""
    counts, truth = baron_subsample()
    params = {"pretrain_epochs": 15, "cluster_epochs": 5, "min_steps": 1}
    return {
        "scsmd": ari_of("scsmd", counts, truth, seed, device=device, params=params),
        "pca_kmeans": ari_of("pca-kmeans", counts, truth, seed),
    }


def scdmac_baron(seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """scDMAC (defaults but 30 masking epochs) on 400 baron_mouse cells, PCA + K-means on the same cells, and
    whether the guard (scatlas.cluster.guard) keeps scDMAC's partition (1) or falls back (0)."""
    from scatlas.cluster import cluster_counts
    from scatlas.cluster.guard import guard

    counts, truth = baron_subsample()
    k = len(set(truth))
    labels, embedding = cluster_counts("scdmac", counts, k, seed=seed, device=device, params={"mae_epochs": 30})
    return {
        "scdmac": float(adjusted_rand_score(truth, labels)),
        "pca_kmeans": ari_of("pca-kmeans", counts, truth, seed),
        "guard_keeps_scdmac": float(guard(counts, labels, embedding, k, seed)[2]["choice"] == "deep"),
    }


def deng_methods(seed: int = 0) -> dict[str, float]:
    """Each method of the workflow test on deng's 5 embryo stages (scDMAC with :data:`SCDMAC_TINY`)."""
    from scatlas.cluster.data import read_counts

    matrix = read_counts(DENG)
    truth = ad.read_h5ad(DENG).obs["label"].to_numpy()[matrix.cell_index]
    from scatlas.cluster import cluster_counts
    from scatlas.evaluate.clustering import hungarian_accuracy

    pca_kmeans, _ = cluster_counts("pca-kmeans", matrix.counts, 5, seed=seed)
    return {
        "scdmac_tiny": ari_of("scdmac", matrix.counts, truth, seed, device="cpu", params=SCDMAC_TINY),
        "pca_kmeans": float(adjusted_rand_score(truth, pca_kmeans)),
        "pca_kmeans_acc": float(hungarian_accuracy(truth, pca_kmeans)),
        "leiden": ari_of("leiden", matrix.counts, truth, seed),
    }


def leiden_cbmc(seed: int = 0) -> dict[str, float]:
    """Leiden on cite_cbmc_top2000 (8,617 cells, 15 types: above scanpy's 8,192-cell kNN switch)."""
    from scatlas.cluster.data import read_counts

    path = BENCHMARKS / "cite_cbmc_top2000.h5ad"
    matrix = read_counts(path)
    truth = ad.read_h5ad(path).obs["label"].to_numpy()[matrix.cell_index]
    return {"leiden": ari_of("leiden", matrix.counts, truth, seed)}


# ---- embeddings (issue 39): a short dense fit on kang CTRL, its STIM cells queried ----
KANG = BENCHMARKS / "pbmc_ifnb_kang_2800.h5ad"
EMBED_SHORT = {"hidden": [256, 32], "n_top_genes": 1000, "epochs": 10, "batch_size": 64}
KANG_TYPES = ("B", "CD14 Mono", "CD16 Mono", "CD4 Memory T", "CD4 Naive T", "CD8 T", "NK", "T activated")


def kang_small(per_type: int = 60, seed: int = 0) -> ad.AnnData:
    """Up to ``per_type`` cells of each of kang's 8 largest types in each condition (obs condition: CTRL,
    STIM) × the genes detected in them; raw counts."""
    adata = ad.read_h5ad(KANG)
    rng = np.random.default_rng(seed)
    cells = []
    for (_, _), group in adata.obs[adata.obs["label"].isin(KANG_TYPES)].groupby(["label", "condition"], observed=True):
        rows = np.flatnonzero(adata.obs_names.isin(group.index))
        cells.extend(rng.choice(rows, min(per_type, len(rows)), replace=False))
    small = adata[np.sort(cells)].copy()
    small = small[:, np.asarray(small.X.sum(axis=0)).ravel() > 0].copy()
    small.X = sp.csr_matrix(small.X, dtype=np.float32)
    return small


def embed_kang(seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """Accuracy, macro-F1 and MAP of a short dense fit on kang_small's CTRL cells for its STIM cells, and
    PCA-100 + kNN's on the same cells."""
    from scatlas.embed.baselines import pca_knn
    from scatlas.embed.metrics import mapping_scores
    from scatlas.models.embed import Embedder, EmbedParams

    adata = kang_small()
    train = (adata.obs["condition"] == "CTRL").to_numpy()
    labels = adata.obs["label"].astype(str).to_numpy()
    model = Embedder(EmbedParams.from_dict(EMBED_SHORT), seed, device)
    model.fit(adata.X[train], adata.var_names, labels[train])
    _, similarity, found, _ = model.query(adata.X[~train], adata.var_names)
    codes = np.searchsorted(model.types, labels[train])
    predicted = np.asarray(model.types)[similarity.argmax(axis=1)]
    scores = mapping_scores(labels[~train], predicted, model.types, codes[found], codes)
    pca_predicted, pca_ranked, _ = pca_knn(adata.X[train], labels[train], adata.X[~train], seed=seed)
    pca = mapping_scores(labels[~train], pca_predicted, model.types, pca_ranked, codes)
    return {
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "map": scores["map"],
        "pca_accuracy": pca["accuracy"],
        "pca_map": pca["map"],
        "lead_over_pca": scores["accuracy"] - pca["accuracy"],
    }


PROBES = {
    "scsmd_baron": scsmd_baron,
    "scdmac_baron": scdmac_baron,
    "deng_methods": deng_methods,
    "leiden_cbmc": leiden_cbmc,
    "embed_kang": embed_kang,
}
