"""Imputation baselines and peers for ``scatlas impute-benchmark``: no imputation, the gene mean,
the additive cell + gene mean, kNN smoothing, MAGIC and an ALRA-style low-rank approximation.

Each is called as ``fit(x, params, seed, device, reference)`` with ``x`` the ln(1 + x) expression
(cells × genes, CSR float32; a zero is unobserved) and returns the imputed matrix on the same scale
(cells × genes, dense float32); ``device`` and ``reference`` are for the deep models and ignored here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scatlas.params import MethodParams


@dataclass
class NoParams(MethodParams):
    """A baseline without parameters."""

    model_name = "baseline"


@dataclass
class KnnParams(MethodParams):
    """kNN smoothing: each cell's mean over its ``n_neighbors`` nearest cells (itself included) in the
    first ``n_comps`` principal components of ``x``."""

    model_name = "knn"
    n_comps: int = 50
    n_neighbors: int = 15


@dataclass
class MagicParams(MethodParams):
    """MAGIC's (magic-impute) own defaults; ``t`` 0 = its automatic choice."""

    model_name = "magic"
    knn: int = 5
    decay: float = 1.0
    t: int = 0
    n_pca: int = 100


@dataclass
class AlraParams(MethodParams):
    """ALRA (Linderman et al., Nat Commun 2022): rank-``k`` SVD of ``x`` (``k`` 0 = ALRA's choice from the
    gaps between the first ``max_rank`` singular values), each gene's values under the magnitude of its
    ``quantile`` lowest value set to zero, the rest rescaled to the observed non-zeros' mean and sd, observed
    values restored where the approximation zeroed them."""

    model_name = "alra"
    k: int = 0
    max_rank: int = 100
    quantile: float = 0.001


def _observed_mean(x: sp.csr_matrix, axis: int) -> np.ndarray:
    counts = np.asarray((x > 0).sum(axis=axis), dtype=np.float64).ravel()
    sums = np.asarray(x.sum(axis=axis), dtype=np.float64).ravel()
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def no_imputation(x: sp.spmatrix, params=None, seed: int = 0, device: str = "auto", reference=None) -> np.ndarray:
    """``x`` itself: every unobserved entry stays zero."""
    return sp.csr_matrix(x).toarray().astype(np.float32)


def gene_mean(x: sp.spmatrix, params=None, seed: int = 0, device: str = "auto", reference=None) -> np.ndarray:
    """Each gene's mean over its observed (non-zero) values, in every cell."""
    x = sp.csr_matrix(x)
    return np.broadcast_to(_observed_mean(x, 0).astype(np.float32), x.shape).copy()


def cell_gene_mean(x: sp.spmatrix, params=None, seed: int = 0, device: str = "auto", reference=None) -> np.ndarray:
    """Additive: each cell's mean observed value plus the gene's offset, the mean over the gene's observed
    entries of (value − that cell's mean). A cell without observed values gets the gene's mean."""
    x = sp.csr_matrix(x, dtype=np.float64)
    x.eliminate_zeros()
    cell = _observed_mean(x, 1)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    residual = sp.csr_matrix((x.data - cell[rows], x.indices, x.indptr), shape=x.shape)
    observed = np.asarray((x > 0).sum(axis=0), dtype=np.float64).ravel()
    offset = np.divide(np.asarray(residual.sum(axis=0)).ravel(), observed, out=np.zeros(x.shape[1]), where=observed > 0)
    imputed = cell[:, None] + offset[None, :]
    empty = np.diff(x.indptr) == 0
    imputed[empty] = _observed_mean(x, 0)[None, :]
    return imputed.astype(np.float32)


def _pca(x: sp.csr_matrix, n_comps: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_comps = max(1, min(n_comps, min(x.shape) - 1))
    return PCA(n_comps, random_state=seed).fit_transform(x.toarray())


def knn_smoothing(x: sp.spmatrix, params: KnnParams | None = None, seed: int = 0, device="auto", reference=None):
    """:class:`KnnParams`' smoothing of ``x`` (unobserved zeros included in the means)."""
    from sklearn.neighbors import NearestNeighbors

    params = params or KnnParams()
    x = sp.csr_matrix(x, dtype=np.float32)
    k = min(params.n_neighbors, x.shape[0])
    neighbours = NearestNeighbors(n_neighbors=k).fit(pcs := _pca(x, params.n_comps, seed)).kneighbors(pcs)[1]
    rows = np.repeat(np.arange(x.shape[0]), k)
    weights = sp.csr_matrix(
        (np.full(rows.size, 1.0 / k, dtype=np.float32), (rows, neighbours.ravel())), shape=(x.shape[0],) * 2
    )
    return np.asarray((weights @ x).toarray(), dtype=np.float32)


def magic(x: sp.spmatrix, params: MagicParams | None = None, seed: int = 0, device="auto", reference=None):
    """MAGIC (van Dijk et al., Cell 2018; the ``magic-impute`` package) on ``x``, one thread."""
    import magic as magic_impute

    params = params or MagicParams()
    operator = magic_impute.MAGIC(
        knn=min(params.knn, x.shape[0] - 1),
        decay=params.decay,
        t=params.t or "auto",
        n_pca=min(params.n_pca, min(x.shape) - 1),
        random_state=seed,
        n_jobs=1,
        verbose=0,
    )
    with warnings.catch_warnings():  # magic-impute 3.0 calls tasklogger's deprecated methods
        warnings.simplefilter("ignore", DeprecationWarning)
        imputed = operator.fit_transform(sp.csr_matrix(x, dtype=np.float64))
    return np.asarray(imputed, dtype=np.float32)


def alra_rank(singular_values: np.ndarray, thresh: float = 6.0, noise_start: int = 80) -> int:
    """ALRA's ``choose_k``: the last gap between consecutive singular values more than ``thresh`` sd above the
    mean gap of the tail (from the ``noise_start``-th on; the last fifth when there are fewer values)."""
    gaps = singular_values[:-1] - singular_values[1:]
    tail = gaps[min(noise_start - 1, int(len(gaps) * 0.8)) :]
    sd = tail.std(ddof=1) if tail.size > 1 else 0.0
    if sd == 0:
        return 1
    above = np.flatnonzero((gaps - tail.mean()) / sd > thresh)
    return int(above[-1] + 1) if above.size else 1


def alra(x: sp.spmatrix, params: AlraParams | None = None, seed: int = 0, device="auto", reference=None):
    """ALRA-style low-rank imputation of ``x`` (:class:`AlraParams`)."""
    from sklearn.utils.extmath import randomized_svd

    params = params or AlraParams()
    x = sp.csr_matrix(x, dtype=np.float64)
    rank = max(2, min(params.max_rank, min(x.shape) - 1))
    u, s, vt = randomized_svd(x, rank, n_iter=10, random_state=seed)
    k = params.k or alra_rank(s)
    low = (u[:, :k] * s[:k]) @ vt[:k]
    thresholds = np.abs(np.quantile(low, params.quantile, axis=0))
    low[low <= thresholds] = 0.0
    dense = x.toarray()
    observed = dense > 0
    for g in range(low.shape[1]):
        kept, seen = low[:, g] > 0, observed[:, g]
        if kept.sum() < 2 or seen.sum() < 2:
            continue
        sd_low, sd_seen = low[kept, g].std(ddof=1), dense[seen, g].std(ddof=1)
        scale = sd_seen / sd_low if sd_low > 0 else 1.0
        low[kept, g] = low[kept, g] * scale + (dense[seen, g].mean() - low[kept, g].mean() * scale)
    low[low < 0] = 0.0
    restore = observed & (low == 0)
    low[restore] = dense[restore]
    return low.astype(np.float32)
