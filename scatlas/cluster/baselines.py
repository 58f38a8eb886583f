"""Baseline clusterings on scanpy's standard path: PCA + K-means, and Leiden on a kNN graph."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.cluster import KMeans

from scatlas.preprocess.normalize import highly_variable, log_normalize

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


def knn_graph(embedding: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> ad.AnnData:
    """An AnnData holding scanpy's kNN graph of ``embedding`` (cells × dimensions), ready for Leiden."""
    adata = ad.AnnData(sp.csr_matrix((embedding.shape[0], 0), dtype=np.float32), obsm={"X_emb": embedding})
    # exact kNN (scikit-learn): from 8192 cells scanpy 1.11 otherwise takes pynndescent's graph, a scipy
    # sparse array it then fails on (csr_array has no getnnz since scipy 1.14)
    sc.pp.neighbors(
        adata, n_neighbors=min(n_neighbors, adata.n_obs - 1), use_rep="X_emb", random_state=seed, transformer="sklearn"
    )
    return adata


def leiden_labels(graph: ad.AnnData, resolution: float, seed: int = 0) -> np.ndarray:
    """Leiden communities (igraph) of :func:`knn_graph`'s graph at ``resolution``."""
    sc.tl.leiden(graph, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
    return graph.obs["leiden"].astype(int).to_numpy()


def estimate_n_clusters(embedding: np.ndarray, seed: int = 0, resolution: float = 1.0, n_neighbors: int = 15) -> int:
    """K when it is not given (SPEC §2.1): the number of Leiden communities at ``resolution`` (scanpy's
    default, 1) on the kNN graph of ``embedding``."""
    k = len(np.unique(leiden_labels(knn_graph(embedding, seed, n_neighbors), resolution, seed)))
    log.info(
        "estimated K = %d (Leiden at resolution %g on the %d-dimensional embedding)", k, resolution, embedding.shape[1]
    )
    return k


def pca_kmeans(
    counts: sp.spmatrix,
    n_clusters: int | None,
    seed: int = 0,
    n_top_genes: int = 2000,
    n_comps: int = 50,
    n_init: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """K-means (``n_init`` restarts) on :func:`pca_embedding`; K estimated on it when ``n_clusters`` is
    None (:func:`estimate_n_clusters`). Returns (labels, embedding)."""
    embedding = pca_embedding(counts, n_top_genes, n_comps, seed)
    if n_clusters is None:
        n_clusters = estimate_n_clusters(embedding, seed)
    labels = KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(embedding)
    return labels, embedding


def leiden(
    counts: sp.spmatrix,
    n_clusters: int | None,
    seed: int = 0,
    n_top_genes: int = 2000,
    n_comps: int = 50,
    n_neighbors: int = 15,
    max_steps: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Leiden on scanpy's kNN graph of :func:`pca_embedding`, resolution bisected to give ``n_clusters``
    (None: resolution 1, K as Leiden finds it).

    Leiden's cluster count grows with the resolution; the bisection (on a log scale between 1e-3 and
    10) stops at the first resolution giving exactly ``n_clusters``, else keeps the closest one.
    Returns (labels, embedding).
    """
    embedding = pca_embedding(counts, n_top_genes, n_comps, seed)
    graph = knn_graph(embedding, seed, n_neighbors)
    if n_clusters is None:
        return leiden_labels(graph, 1.0, seed), embedding
    low, high = np.log10(1e-3), np.log10(10.0)
    best: tuple[int, float, np.ndarray] | None = None
    for _ in range(max_steps):
        resolution = 10 ** ((low + high) / 2)
        labels = leiden_labels(graph, resolution, seed)
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
