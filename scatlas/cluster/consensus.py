"""Consensus of several partitions of the same cells (cluster ensembles): average linkage on the
co-association distance (Fred & Jain 2005, "evidence accumulation"; SC3's consensus step, Kiselev et
al. 2017), and the choice of the candidate that shares the most information with the partitions
(Strehl & Ghosh 2002)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

log = logging.getLogger(__name__)


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
    clusters that the others agree on only in part (deng, 133 cells: a 101-cell cluster split in two,
    ARI 0.28 against 0.43 for the two partitions that agree); the partitions' own vote catches it.
    """
    candidates = [consensus_partition(partitions, n_clusters), *(np.asarray(p) for p in partitions)]
    agreement = [np.mean([normalized_mutual_info_score(p, c) for p in partitions]) for c in candidates]
    return candidates[int(np.argmax(agreement))]
