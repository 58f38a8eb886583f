"""Baseline clusterings on scanpy's standard path: PCA + K-means, and Leiden on a kNN graph."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.cluster import KMeans

from scatlas.cluster.data import highly_variable, log_normalize

log = logging.getLogger(__name__)


def pca_embedding(counts: sp.spmatrix, n_top_genes: int = 2000, n_comps: int = 50, seed: int = 0) -> np.ndarray:
    """Principal components (cells × ``n_comps``) of the z-scored log1p-normalized highly variable genes.

    ``counts``: raw counts, cells × genes, no all-zero cells.
    """
    genes = highly_variable(counts, n_top_genes)
    adata = ad.AnnData(log_normalize(counts)[:, genes].toarray())
    sc.pp.scale(adata, max_value=10)
    n_comps = min(n_comps, min(adata.shape) - 1)
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed, svd_solver="arpack")
    return adata.obsm["X_pca"]


def pca_kmeans(counts: sp.spmatrix, n_clusters: int, seed: int = 0, n_top_genes: int = 2000, n_comps: int = 50,
               n_init: int = 10) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """K-means (``n_init`` restarts) on :func:`pca_embedding`. Returns (labels, embedding)."""
    embedding = pca_embedding(counts, n_top_genes, n_comps, seed)
    labels = KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(embedding)
    return labels, embedding


def leiden(counts: sp.spmatrix, n_clusters: int, seed: int = 0, n_top_genes: int = 2000, n_comps: int = 50,
           n_neighbors: int = 15, max_steps: int = 30) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Leiden on scanpy's kNN graph of :func:`pca_embedding`, resolution bisected to give ``n_clusters``.

    Leiden's cluster count grows with the resolution; the bisection (on a log scale between 1e-3 and
    10) stops at the first resolution giving exactly ``n_clusters``, else keeps the closest one.
    Returns (labels, embedding).
    """
    embedding = pca_embedding(counts, n_top_genes, n_comps, seed)
    adata = ad.AnnData(sp.csr_matrix(counts.shape, dtype=np.float32), obsm={"X_pca": embedding})
    # exact kNN (scikit-learn): from 8192 cells scanpy 1.11 otherwise takes pynndescent's graph, a scipy
    # sparse array it then fails on (csr_array has no getnnz since scipy 1.14)
    sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, adata.n_obs - 1), use_rep="X_pca", random_state=seed,
                    transformer="sklearn")  # fmt: skip
    low, high = np.log10(1e-3), np.log10(10.0)
    best: tuple[int, float, np.ndarray] | None = None
    for _ in range(max_steps):
        resolution = 10 ** ((low + high) / 2)
        sc.tl.leiden(adata, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2,
                     directed=False)  # fmt: skip
        labels = adata.obs["leiden"].astype(int).to_numpy()
        found = len(np.unique(labels))
        if best is None or abs(found - n_clusters) < abs(best[0] - n_clusters):
            best = (found, resolution, labels)
        if found == n_clusters:
            break
        if found < n_clusters:
            low = np.log10(resolution)
        else:
            high = np.log10(resolution)
    found, resolution, labels = best
    log.info("leiden: resolution %.4g gives %d clusters (asked for %d)", resolution, found, n_clusters)
    return labels, embedding
