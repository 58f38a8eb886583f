"""Baseline clusterings on scanpy's standard path: PCA + K-means, and Leiden on a kNN graph.

Both are fitted as every clustering method of :data:`scatlas.registry.CLUSTERING` is:
``fit(counts, n_clusters, params, seed, device, gene_names)`` → (labels, embedding).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.cluster import KMeans

from scatlas.params import MethodParams
from scatlas.partition import estimate_n_clusters, knn_graph, leiden_labels
from scatlas.preprocess.normalize import highly_variable, log_normalize

log = logging.getLogger(__name__)


@dataclass
class PcaKmeansParams(MethodParams):
    """pca-kmeans: genes, principal components and K-means restarts (``cluster.params.pca-kmeans``)."""

    model_name = "pca-kmeans"

    n_top_genes: int = 2000  # highly variable genes
    n_comps: int = 50
    n_init: int = 10


@dataclass
class LeidenParams(MethodParams):
    """leiden: genes, principal components, neighbours and bisection steps (``cluster.params.leiden``)."""

    model_name = "leiden"

    n_top_genes: int = 2000
    n_comps: int = 50
    n_neighbors: int = 15
    max_steps: int = 30  # of the resolution's bisection


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


def pca_kmeans(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: PcaKmeansParams | None = None,
    seed: int = 0,
    device: str = "cpu",
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray]:
    """K-means (``n_init`` restarts) on :func:`pca_embedding` of raw counts (cells × genes); K estimated
    on it when ``n_clusters`` is None (:func:`~scatlas.partition.estimate_n_clusters`). Returns (labels,
    embedding). ``device`` and ``gene_names`` are unused: scanpy and scikit-learn run on the CPU."""
    p = params or PcaKmeansParams()
    embedding = pca_embedding(counts, p.n_top_genes, p.n_comps, seed)
    if n_clusters is None:
        n_clusters = estimate_n_clusters(embedding, seed)
    labels = KMeans(n_clusters, n_init=p.n_init, random_state=seed).fit_predict(embedding)
    return labels, embedding


def leiden(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: LeidenParams | None = None,
    seed: int = 0,
    device: str = "cpu",
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Leiden on scanpy's kNN graph of :func:`pca_embedding` of raw counts (cells × genes), resolution
    bisected to give ``n_clusters`` (None: resolution 1, K as Leiden finds it). ``device`` and
    ``gene_names`` are unused.

    Leiden's cluster count grows with the resolution; the bisection (on a log scale between 1e-3 and
    10) stops at the first resolution giving exactly ``n_clusters``, else keeps the closest one.
    Returns (labels, embedding).
    """
    p = params or LeidenParams()
    embedding = pca_embedding(counts, p.n_top_genes, p.n_comps, seed)
    graph = knn_graph(embedding, seed, p.n_neighbors)
    if n_clusters is None:
        return leiden_labels(graph, 1.0, seed), embedding
    low, high = np.log10(1e-3), np.log10(10.0)
    best: tuple[int, float, np.ndarray] | None = None
    for _ in range(p.max_steps):
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
