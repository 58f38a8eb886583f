"""Partitions of cells that the clustering baselines and the deep models share: Leiden communities of a kNN
graph (and K estimated from them when it is not given), and the consensus of several partitions.

The consensus (cluster ensembles): average linkage on the co-association distance (Fred & Jain 2005,
"evidence accumulation"; SC3's consensus step, Kiselev et al. 2017), and the choice of the candidate
that shares the most information with the partitions (Strehl & Ghosh 2002).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.metrics import normalized_mutual_info_score

log = logging.getLogger(__name__)


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
    """K when it is not given (``scatlas cluster`` without ``--n-clusters``): the number of Leiden communities
    at ``resolution`` (scanpy's default, 1) on the kNN graph of ``embedding``."""
    k = len(np.unique(leiden_labels(knn_graph(embedding, seed, n_neighbors), resolution, seed)))
    log.info(
        "estimated K = %d (Leiden at resolution %g on the %d-dimensional embedding)", k, resolution, embedding.shape[1]
    )
    return k


def consensus_partition(partitions: Sequence[np.ndarray], n_clusters: int) -> np.ndarray:
    """Labels 0…k−1 of the cells: average-linkage clustering on the co-association distance (the share
    of ``partitions`` that put two cells in different clusters), cut at ``n_clusters`` clusters.

    Cells with the same label in every partition are at distance 0 and join first, so the linkage runs
    on the distinct label combinations weighted by their numbers of cells (UPGMA's Lance–Williams
    update), not on an n × n matrix: memory O(m²) for m combinations, in practice a few times k. With few
    partitions the distances take few values and tie often; among tied pairs the two smallest groups
    join first, so the few cells on which the partitions disagree join a large group before two large
    groups merge. When there are fewer combinations than ``n_clusters``, each one is a cluster (logged).
    """
    if len(partitions) == 0:
        raise ValueError("consensus of no partitions")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, not {n_clusters}")
    labels = np.column_stack([np.unique(np.asarray(p), return_inverse=True)[1].ravel() for p in partitions])
    combinations, cells, sizes = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
    m = len(combinations)
    if m < n_clusters:
        log.warning("consensus: the partitions have %d label combination(s), fewer than %d clusters", m, n_clusters)
    distance = np.zeros((m, m))
    for column in combinations.T:
        distance += column[:, None] != column[None, :]
    distance /= combinations.shape[1]
    np.fill_diagonal(distance, np.inf)
    weight = sizes.astype(float)
    group = np.arange(m)  # the combination that stands for each one's current cluster
    for _ in range(m - min(n_clusters, m)):
        tied = np.argwhere(distance <= distance.min() + 1e-9)
        a, b = tied[np.argmin(weight[tied[:, 0]] + weight[tied[:, 1]])]
        merged = (weight[a] * distance[a] + weight[b] * distance[b]) / (weight[a] + weight[b])
        distance[a], distance[:, a] = merged, merged
        distance[b], distance[:, b] = np.inf, np.inf
        distance[a, a] = np.inf
        weight[a] += weight[b]
        group[group == b] = a
    return np.unique(group, return_inverse=True)[1][cells.ravel()]


def ensemble_partition(partitions: Sequence[np.ndarray], n_clusters: int) -> np.ndarray:
    """Of the co-association consensus (:func:`consensus_partition`) and the partitions themselves, the
    one with the highest mean NMI to the partitions (Strehl & Ghosh's average normalised mutual
    information; the consensus wins ties).

    The co-association alone can keep a split that one partition of three makes and dissolve small
    clusters that the others agree on only in part (on deng's 133 cells it split a 101-cell cluster in two;
    docs/models/scdmac.md); the partitions' own vote catches it.
    """
    candidates = [consensus_partition(partitions, n_clusters), *(np.asarray(p) for p in partitions)]
    agreement = [np.mean([normalized_mutual_info_score(p, c) for p in partitions]) for c in candidates]
    return candidates[int(np.argmax(agreement))]
