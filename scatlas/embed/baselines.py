"""The baseline of the embeddings (scQuery's): PCA with 100 components of the training cells' log expression,
the query projected on it, types by their nearest training cells (exact Euclidean search)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from scatlas.preprocess.normalize import highly_variable, log_normalize


def pca_knn(
    train_counts: sp.spmatrix,
    train_labels,
    query_counts: sp.spmatrix,
    n_comps: int = 100,
    n_top_genes: int = 2000,
    n_neighbors: int = 100,
    vote: int = 15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(predicted types, cells × n_neighbors ranked neighbour type codes, the sorted types) of query cells.

    Both count matrices are raw counts over the same genes; the ``n_top_genes`` most variable genes of the
    training cells are log-normalised (:func:`log_normalize`), centred and projected on the training cells'
    first ``n_comps`` components; the prediction is the majority type of the ``vote`` nearest training cells
    (ties: the type of the nearest among them).
    """
    labels = np.asarray(train_labels).astype(str)
    types = sorted(set(labels))
    codes = np.searchsorted(types, labels)
    genes = np.sort(highly_variable(sp.csr_matrix(train_counts), n_top_genes))
    train = log_normalize(sp.csr_matrix(train_counts))[:, genes].toarray()
    query = log_normalize(sp.csr_matrix(query_counts))[:, genes].toarray()
    pca = PCA(n_components=min(n_comps, *train.shape), random_state=seed, svd_solver="randomized").fit(train)
    knn = NearestNeighbors(n_neighbors=min(n_neighbors, len(train))).fit(pca.transform(train))
    _, found = knn.kneighbors(pca.transform(query))
    ranked = codes[found]
    votes = np.zeros((len(ranked), len(types)))
    top = ranked[:, :vote]
    np.add.at(votes, (np.repeat(np.arange(len(top)), top.shape[1]), top.ravel()), 1.0)
    votes += 1e-3 * (top[:, :1] == np.arange(len(types)))  # ties go to the nearest cell's type
    return np.asarray(types, dtype=object)[votes.argmax(axis=1)], ranked, types
