"""SCDE-style differential expression (Kharchenko, Silberstein & Scadden, Nat Methods 2014).

A re-implementation of ``hms-dbmi/scde`` as restated in METHODS-REFERENCE §5, vectorised over cells
and genes (numpy for the per-cell fits, torch for the bootstrap of the group posteriors):

1. :func:`fit_error_models` — per cell, a mixture of a negative binomial for amplified genes
   (mean ``a·e``, size ``θ(e)``) and a Poisson(0.1) for drop-outs, the drop-out probability logistic
   in ``log e`` (quadratic), fitted by EM against a reference ``e`` built from the k most similar
   other cells of the same group (``knn.error.models``).
2. :func:`expression_prior` — the weighted, mirrored KDE of the cells' expression magnitudes.
3. :func:`group_posterior` — per-cell posteriors of each gene's magnitude on the prior's grid,
   combined over a group's cells with the bootstrap.
4. :func:`difference_posterior` / :func:`summarise_difference` — the posterior of the log
   expression difference; mle, 95 % bounds, conservative estimate and Z; :func:`corrected_z` gives
   the Benjamini–Hochberg corrected Z (SCDE's documentation says Holm; its code uses BH).

Sign convention everywhere: a positive difference, fold change or Z means **higher in the first
group** (the cell type tested), whatever the groups are called — SCDE's own sign followed the
alphabetical order of factor levels (hms-dbmi/scde#66), which flipped scQuery's results for
some terms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import signal, special, stats

log = logging.getLogger(__name__)

FAILURE_RATE = 0.1  # λ0 of the drop-out Poisson; fixed in SCDE, never fitted
THETA_RANGE = (0.01, 100.0)  # NB size clamp of the fit (theta.fit.range)
# Bounds of the 5-parameter logistic of log(1/θ) in log e: B, T, M, S, R (scde's nlminb bounds).
THETA_LOWER = np.array([-100.0, -10.0, -100.0, -100.0, 0.1])
THETA_UPPER = np.array([10.0, 100.0, 100.0, 0.0, 20.0])


@dataclass
class ErrorModels:
    """Fitted per-cell error models, one row per cell (in the order of the counts given).

    ``P(r | e) = (1 - π(e))·NB(r; a·e, θ(e)) + π(e)·Poisson(r; 0.1)`` with
    ``π(e) = sigmoid(c0 + c1·log e + c2·(log e)²)`` and
    ``θ(e) = exp(-(B + (T - B) / (1 + 10^((M - log e)·S))^R))``; ``e`` in counts per million.

    Attributes
    ----------
    concomitant : (n_cells, 3) coefficients ``c0, c1, c2`` of the drop-out logit.
    log_scale : (n_cells,) ``log a`` (SCDE's ``corr.b``; ``corr.a`` = 1).
    theta_curve : (n_cells, 5) ``B, T, M, S, R``.
    """

    concomitant: np.ndarray
    log_scale: np.ndarray
    theta_curve: np.ndarray

    def failure_probability(self, log_e: np.ndarray) -> np.ndarray:
        """Drop-out probability π for magnitudes ``log_e`` of shape (n_cells, ...)."""
        c = self.concomitant.reshape(self.concomitant.shape + (1,) * (log_e.ndim - 1))
        return special.expit(c[:, 0] + c[:, 1] * log_e + c[:, 2] * log_e**2)

    def nb_size(self, log_e: np.ndarray, clip: tuple[float, float] = (0.01, 1000.0)) -> np.ndarray:
        """NB size θ for magnitudes ``log_e`` of shape (n_cells, ...)."""
        return np.clip(np.exp(-_logistic5(self.theta_curve, log_e, np)), *clip)


def _logistic5(p, log_e, xp):
    """``B + (T - B) / (1 + 10^((M - log e)·S))^R``, computed as a softplus so it never overflows."""
    b, t, m, s, r = (p[:, i].reshape((-1,) + (1,) * (log_e.ndim - 1)) for i in range(5))
    u = (m - log_e) * s * np.log(10.0)
    softplus = xp.logaddexp(u, xp.zeros_like(u)) if xp is np else torch.nn.functional.softplus(u)
    return b + (t - b) * xp.exp(-r * softplus)


def nb_logpmf(r, mu, theta):
    """log NB(r; mean mu, size theta); ``mu = 0`` gives log 1 at r = 0 and -inf elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_total = np.log(theta + mu)
        out = special.gammaln(r + theta) - special.gammaln(theta) - special.gammaln(r + 1)
        out = out + theta * (np.log(theta) - log_total) + special.xlogy(r, mu) - r * log_total
    return np.where((mu == 0) & (r > 0), -np.inf, out)


def mixture_components(r, mu, pi, theta):
    """The two log terms of the error model: ``log[(1-π)·NB(r; μ, θ)]`` and ``log[π·Poisson(r; 0.1)]``."""
    pi = np.clip(pi, 1e-15, 1 - 1e-15)  # a certain drop-out (or none) would make the other term NaN
    with np.errstate(divide="ignore"):
        return np.log1p(-pi) + nb_logpmf(r, mu, theta), np.log(pi) + stats.poisson.logpmf(r, FAILURE_RATE)


def mixture_logpmf(r, mu, pi, theta):
    """log P(r) of the error model ``(1-π)·NB(r; μ, θ) + π·Poisson(r; 0.1)``, broadcast elementwise."""
    return np.logaddexp(*mixture_components(r, mu, pi, theta))


# --------------------------------------------------------------------------------------------
# 1. Error models


def library_sizes(counts: np.ndarray) -> np.ndarray:
    """Library size of each cell in millions of reads, (n_cells,) from raw counts (n_cells, n_genes)."""
    return np.maximum(counts.sum(axis=1), 1.0) / 1e6


def knn_reference(counts: np.ndarray, k: int | None = None, trim: float = 0.25) -> np.ndarray:
    """Expected magnitude of every gene in every cell from its k most similar other cells.

    Similarity = Pearson correlation of ``sqrt(counts)`` over the genes both cells detect (counts < 1
    are missing, pairwise complete), as ``knn.error.models``; the reference is the trimmed mean of
    ``count / library size`` over the k neighbours.

    Parameters
    ----------
    counts : (n_cells, n_genes) raw counts of one group.
    k : neighbours per cell; default half the group (at least 1).

    Returns
    -------
    (n_cells, n_genes) expected magnitudes in counts per million (0 where the reference is 0).
    """
    n = counts.shape[0]
    k = max(1, min(n - 1, k if k is not None else n // 2))
    observed = (counts >= 1).astype(np.float64)
    x = np.sqrt(counts) * observed
    # Pairwise-complete Pearson correlation from five matrix products.
    pairs = observed @ observed.T
    sum_x = x @ observed.T  # Σ x_i over genes observed in both i and j
    sum_xx = (x * x) @ observed.T
    sum_xy = x @ x.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sum_xy - sum_x * sum_x.T / pairs
        var = (sum_xx - sum_x**2 / pairs) * (sum_xx.T - sum_x.T**2 / pairs)
        corr = cov / np.sqrt(var)
    corr = np.where(np.isfinite(corr) & (pairs >= 3), corr, -2.0)
    np.fill_diagonal(corr, -np.inf)
    neighbours = np.argsort(-corr, axis=1, kind="stable")[:, :k]  # (n_cells, k)
    fpm = counts / library_sizes(counts)[:, None]
    return stats.trim_mean(fpm[neighbours], trim, axis=1)


def fit_error_models(counts: np.ndarray, k: int | None = None, n_iter: int = 30, min_nonfailed: int = 5,
                     tol: float = 1e-5) -> ErrorModels:  # fmt: skip
    """Fit the per-cell error models of one group of cells by EM (``knn.error.models``).

    Parameters
    ----------
    counts : (n_cells, n_genes) raw integer counts of the cells of ONE group (SCDE fits each group
        against references from its own cells).
    k : neighbours of the reference; default half the group.
    n_iter : EM iterations at most (flexmix uses 50; the log-likelihood has settled well before).
    min_nonfailed : a gene enters a cell's fit when at least this many of its reference cells
        have a count > 1 (``min.nonfailed``).

    Returns
    -------
    :class:`ErrorModels` with one row per cell, in the input order.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_cells = counts.shape[0]
    if n_cells < 2:
        raise ValueError("an error model needs at least two cells in the group")
    k = max(1, min(n_cells - 1, k if k is not None else n_cells // 2))
    e = knn_reference(counts, k)
    # genes the reference supports: enough neighbours with a count above 1 (computed on the group,
    # scaled to the neighbourhood size, which avoids storing every cell's neighbour set twice).
    support = (counts > 1).sum(axis=0) * k / max(n_cells - 1, 1)
    used = (e > 0) & (support >= min(min_nonfailed, k))[None, :]
    log_e = np.log(np.where(used, e, 1.0))
    w = used.astype(np.float64)

    # Initial drop-out labels: a count <= 1 where the reference is at least the median magnitude
    # of the low-count genes of that cell.
    low = used & (counts <= 1)
    low_median = np.array([np.median(log_e[i, low[i]]) if low[i].any() else np.inf for i in range(n_cells)])
    failed = np.where(low & (log_e >= low_median[:, None]), 1 - 1e-6, 1e-6)

    conc = np.zeros((n_cells, 3))
    theta = None
    previous = -np.inf
    iteration = 0
    for iteration in range(1, n_iter + 1):  # noqa: B007 - reported after the loop
        conc = _fit_concomitant(log_e, failed, w, conc)
        nb_weight = w * (1 - failed)
        scale = (nb_weight * counts).sum(1) / np.maximum((nb_weight * np.exp(log_e)).sum(1), 1e-300)
        log_scale = np.log(np.maximum(scale, 1e-300))
        theta = _fit_theta_curve(counts, np.exp(log_scale[:, None] + log_e), log_e, nb_weight, theta)
        models = ErrorModels(conc, log_scale, theta)
        # E-step: responsibilities of the drop-out component.
        pi = models.failure_probability(log_e)
        mu = np.exp(log_scale[:, None] + log_e)
        log_nb, log_fail = mixture_components(counts, mu, pi, models.nb_size(log_e, THETA_RANGE))
        total = np.logaddexp(log_nb, log_fail)
        failed = np.exp(log_fail - total)
        loglik = (w * total).sum(1)
        if np.all(np.abs(loglik - previous) <= tol * np.abs(loglik)):
            break
        previous = loglik
    log.debug("error models of %d cells: %d EM iterations", n_cells, iteration)
    return models


def _fit_concomitant(log_e, target, weight, start, n_newton: int = 3, ridge: float = 1e-6):
    """Weighted logistic regression of soft labels on (1, log e, log e²), one per cell (Newton).

    The design has only powers of ``log e``, so gradient and Hessian come from its power sums.
    """
    beta = start.copy()
    powers = np.stack([np.ones_like(log_e), log_e, log_e**2, log_e**3, log_e**4])  # (5, cells, genes)
    for _ in range(n_newton):
        p = special.expit(beta[:, [0]] + beta[:, [1]] * log_e + beta[:, [2]] * log_e**2)
        grad = ((weight * (target - p))[None] * powers[:3]).sum(-1).T  # (cells, 3)
        moments = ((weight * p * (1 - p))[None] * powers).sum(-1).T  # (cells, 5)
        hess = moments[:, np.add.outer(np.arange(3), np.arange(3))] + ridge * np.eye(3)
        beta = beta + np.linalg.solve(hess, grad[..., None])[..., 0]
    return beta


def _fit_theta_curve(counts, mu, log_e, weight, start, steps: int = 40, lr: float = 0.05):
    """Weighted least-squares fit of the 5-parameter logistic to per-gene log(1/θ), all cells at once.

    Per gene ``alpha = (y/μ - 1)² - 1/μ`` clamped to [1/100, 1/0.01], weights ``w·sqrt(alpha)``
    (scde's ``nb2gth`` M-step); fitted by projected Adam instead of nlminb.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.clip((counts / mu - 1) ** 2 - 1 / mu, 1 / THETA_RANGE[1], 1 / THETA_RANGE[0])
    alpha = np.where(np.isfinite(alpha), alpha, 1 / THETA_RANGE[1])
    log_alpha = np.log(alpha)
    fit_weight = weight * np.sqrt(alpha)
    fit_weight = fit_weight / np.maximum(fit_weight.sum(1, keepdims=True), 1e-300)
    if start is None:
        used = weight > 0
        start = np.empty((counts.shape[0], 5))
        for i in range(counts.shape[0]):
            la, le = log_alpha[i, used[i]], log_e[i, used[i]]
            if la.size:
                start[i] = [np.quantile(la, 0.025), np.quantile(la, 0.975), np.median(le), -1.0, 0.5]
            else:
                start[i] = [0.0, 0.0, 0.0, -1.0, 0.5]
        start = np.clip(start, THETA_LOWER, THETA_UPPER)
    # Least squares on 64 magnitude bins per cell (weighted means of log e and log alpha) instead of
    # every gene: the same fit up to the spread within a bin, and 30x less work per step.
    n_cells, n_bins = counts.shape[0], 64
    edges = np.linspace(log_e[weight > 0].min(), log_e[weight > 0].max() + 1e-9, n_bins + 1)
    slot = (np.arange(n_cells)[:, None] * n_bins + np.clip(np.searchsorted(edges, log_e) - 1, 0, n_bins - 1)).ravel()
    binned = [np.bincount(slot, (fit_weight * v).ravel(), n_cells * n_bins).reshape(n_cells, n_bins)
              for v in (np.ones_like(log_e), log_e, log_alpha)]  # fmt: skip
    total = np.maximum(binned[0], 1e-300)
    params = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    targets = [torch.from_numpy(a) for a in (binned[2] / total, binned[1] / total, binned[0])]
    lower, upper = torch.from_numpy(THETA_LOWER), torch.from_numpy(THETA_UPPER)
    optimiser = torch.optim.Adam([params], lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors this small only lose to thread hand-offs (ms each on a busy machine)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (targets[2] * (targets[0] - _logistic5(params, targets[1], torch)) ** 2).sum()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            params.copy_(torch.maximum(torch.minimum(params, upper), lower))
    torch.set_num_threads(threads)
    return params.detach().numpy()


# --------------------------------------------------------------------------------------------
# 2. Prior on expression magnitude


def expression_prior(models: ErrorModels, counts: np.ndarray, n_points: int = 400, bandwidth: float = 0.1,
                     max_quantile: float = 0.999) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The prior on expression magnitude (``scde.expression.prior``).

    Parameters
    ----------
    models : error models of the cells, rows aligned with ``counts``.
    counts : (n_cells, n_genes) raw counts of all cells compared.

    Returns
    -------
    grid : (n_points + 1,) magnitudes x = log10(fpm + 1), uniform from 0 to the ``max_quantile``.
    prior : (n_points + 1,) prior probabilities on the grid (sum 1).
    """
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_fpm = np.log(counts) - models.log_scale[:, None]  # -inf for zero counts
    x = np.log10(np.exp(log_fpm) + 1)
    finite = np.isfinite(log_fpm)
    lowest = np.where(finite, log_fpm, np.inf).min()
    weights = 1 - models.failure_probability(np.where(finite, log_fpm, lowest))
    weights = (weights / weights.sum()).ravel()
    x_max = float(np.quantile(x, max_quantile))
    if x_max <= 0:
        x_max = float(x.max()) or 1.0
    # Weighted Gaussian KDE of the mirrored sample {-x, x} on 2·n_points + 1 points: linear binning
    # onto the grid, then a discrete Gaussian convolution (what R's density() does with its FFT).
    full = np.linspace(-x_max, x_max, 2 * n_points + 1)
    step = full[1] - full[0]
    values = np.concatenate([-x.ravel(), x.ravel()])
    mass = np.concatenate([weights, weights]) / 2
    keep = np.abs(values) <= x_max
    pos = (values[keep] + x_max) / step
    left = np.minimum(np.floor(pos).astype(np.int64), 2 * n_points - 1)
    frac = pos - left
    binned = np.bincount(left, mass[keep] * (1 - frac), minlength=full.size) + np.bincount(
        left + 1, mass[keep] * frac, minlength=full.size
    )
    half = int(np.ceil(4 * bandwidth / step))
    kernel = stats.norm.pdf(np.arange(-half, half + 1) * step, scale=bandwidth)
    density = signal.fftconvolve(binned, kernel, mode="full")[half : half + full.size]
    density = np.maximum(density, 0) / step
    grid = full[n_points:]
    prior = density[n_points:] + 1 / full.size
    return grid, prior / prior.sum()


# --------------------------------------------------------------------------------------------
# 3. Posteriors of expression magnitude


def cell_log_posteriors(models: ErrorModels, counts: np.ndarray, grid: np.ndarray):
    """Per-cell log posteriors (flat prior) of every gene's magnitude on the grid, as a lookup table.

    Computed once per distinct count value of each cell (SCDE's C++ does the same), normalised over
    the grid and floored so that sums over cells stay finite.

    Returns
    -------
    table : (n_distinct, n_grid) float32 log posteriors.
    index : (n_cells, n_genes) row of ``table`` for every cell and gene.
    """
    counts = np.asarray(counts)
    n_cells = counts.shape[0]
    fpm = 10.0**grid - 1
    with np.errstate(divide="ignore"):
        log_m = np.log(fpm)  # -inf at the first grid point
    tables, index, offset = [], np.empty(counts.shape, dtype=np.int64), 0
    floor = -np.finfo(np.float32).max / (n_cells * 1.1)
    for c in range(n_cells):
        values, inverse = np.unique(counts[c], return_inverse=True)
        r = values[:, None].astype(np.float64)
        mu = np.exp(models.log_scale[c]) * np.broadcast_to(fpm, (values.size, fpm.size)).copy()
        # Grid snap: a count between two grid means takes the lower one's place, so the peak is hit.
        snap = np.searchsorted(mu[0], values, side="right") - 1
        ok = (snap >= 0) & (snap < fpm.size - 1)
        mu[np.nonzero(ok)[0], snap[ok]] = values[ok]
        lik = _likelihood_on_grid(models, c, r, mu, log_m)
        lik = lik - special.logsumexp(lik, axis=1, keepdims=True)
        tables.append(np.maximum(lik, floor).astype(np.float32))
        index[c] = offset + inverse.reshape(-1)
        offset += values.size
    return np.concatenate(tables), index


def _likelihood_on_grid(models, c, r, mu, log_m):
    """log P(r | m_k) of cell c for distinct counts r (n, 1), means mu (n, K), magnitudes log_m (K,)."""
    finite = np.isfinite(log_m)
    log_m_safe = np.where(finite, log_m, log_m[finite].min())[None, :]
    conc = models.concomitant[c]
    pi = special.expit(conc[0] + conc[1] * log_m_safe + conc[2] * log_m_safe**2)
    theta = np.clip(np.exp(-_logistic5(models.theta_curve[[c]], log_m_safe, np)), 0.01, 1000.0)
    return mixture_logpmf(r, mu, pi, theta)


def group_posterior(table: np.ndarray, index: np.ndarray, n_bootstrap: int, rng: np.random.Generator,
                    genes_per_chunk: int = 512) -> np.ndarray:  # fmt: skip
    """Joint posterior of each gene's magnitude in a group of cells, with the bootstrap.

    For b = 1..B the group's cells are resampled with replacement, their log posteriors summed per
    gene and normalised over the grid; the B posteriors are averaged. B = 0 gives the plain product
    over all cells.

    Parameters
    ----------
    table, index : from :func:`cell_log_posteriors` for the group's cells (index: (n_cells, n_genes)).
    n_bootstrap : B (SCDE: 150 in ``scde.expression.difference``).
    rng : the seeded generator of the resamples.

    Returns
    -------
    (n_genes, n_grid) posterior probabilities, each row summing to 1.
    """
    n_cells, n_genes = index.shape
    if n_bootstrap > 0:
        draws = rng.integers(0, n_cells, size=(n_bootstrap, n_cells))
        multiplicity = np.stack([np.bincount(d, minlength=n_cells) for d in draws]).astype(np.float32)
    else:
        multiplicity = np.ones((1, n_cells), dtype=np.float32)
    weights = torch.from_numpy(multiplicity)
    lookup = torch.from_numpy(table)
    out = np.empty((n_genes, table.shape[1]))
    for start in range(0, n_genes, genes_per_chunk):
        rows = torch.from_numpy(index[:, start : start + genes_per_chunk])
        per_cell = lookup[rows]  # (cells, chunk, grid)
        joint = (weights @ per_cell.reshape(n_cells, -1)).reshape(len(weights), rows.shape[1], -1)
        posterior = torch.softmax(joint.double(), dim=-1).mean(0)
        out[start : start + rows.shape[1]] = posterior.numpy()
    return out


# --------------------------------------------------------------------------------------------
# 4. The difference between two groups


def difference_posterior(first: np.ndarray, second: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Posterior of Δ = x(first) - x(second) on the 2n - 1 offsets of a uniform grid of n points.

    ``P(Δ = d) = Σ_i P1(x_{i+d})·P2(x_i)`` with ``P_j = posterior_j · prior`` (matSlideMult), by FFT.

    Parameters
    ----------
    first, second : (n_genes, n) group posteriors on the same grid.
    prior : (n,) the expression prior.

    Returns
    -------
    (n_genes, 2n - 1) probabilities, offset -(n-1)..(n-1) grid steps, each row summing to 1.
    """
    p1 = first * prior
    p2 = second * prior
    p1 /= p1.sum(1, keepdims=True)
    p2 /= p2.sum(1, keepdims=True)
    diff = np.maximum(signal.fftconvolve(p1, p2[:, ::-1], mode="full", axes=1), 0.0)
    return diff / diff.sum(1, keepdims=True)


def summarise_difference(diff: np.ndarray, step: float) -> pd.DataFrame:
    """mle, 95 % bounds, conservative estimate (log2 units) and Z of difference posteriors.

    Parameters
    ----------
    diff : (n_genes, 2n - 1) from :func:`difference_posterior`; offsets centred on 0.
    step : grid spacing in log10 units.

    Returns
    -------
    DataFrame with ``mle``, ``lb``, ``ub``, ``ce`` (log2 fold change; ce = lb if lb > 0, ub if ub < 0,
    else 0) and ``z`` (positive: higher in the first group), one row per gene.
    """
    n_offsets = diff.shape[1]
    delta = (np.arange(n_offsets) - (n_offsets - 1) / 2) * step / np.log10(2)
    cdf = np.cumsum(diff, axis=1)
    mle = delta[diff.argmax(1)]
    below = cdf < 0.025
    lb_idx = np.where(below.any(1), n_offsets - 1 - np.argmax(below[:, ::-1], axis=1), 0)
    above = cdf > 0.975
    ub_idx = np.where(above.any(1), np.argmax(above, axis=1), n_offsets - 1)
    lb, ub = delta[lb_idx], delta[ub_idx]
    ce = np.where(lb > 0, lb, np.where(ub < 0, ub, 0.0))
    return pd.DataFrame({"mle": mle, "lb": lb, "ub": ub, "ce": ce, "z": difference_z(diff)})


def difference_z(diff: np.ndarray) -> np.ndarray:
    """Z of a difference posterior (SCDE): the larger in magnitude of the two one-sided normal scores.

    With ``g = P(Δ < 0)`` and ``P0 = P(Δ = 0)``: ``zl = min(0, Φ⁻¹(1 - g))``,
    ``zg = max(0, Φ⁻¹(1 - (g + P0)))``; ``Z = zl`` if ``|zl| > |zg|`` else ``zg``.
    """
    diff = diff + 1e-15
    diff = diff / diff.sum(1, keepdims=True)
    zero = (diff.shape[1] - 1) // 2
    g = diff[:, :zero].sum(1)
    zl = np.minimum(0.0, stats.norm.isf(g))
    zg = np.maximum(0.0, stats.norm.isf(np.minimum(g + diff[:, zero], 1.0)))
    return np.where(np.abs(zl) > np.abs(zg), zl, zg)


def corrected_z(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg corrected Z and the two-sided adjusted p-value (scQuery's ``p_adj``).

    ``p = 1 - Φ(|Z|)``, BH over the genes, ``cZ = sign(Z)·Φ⁻¹(1 - p_adj)``; the two-sided
    adjusted p is ``2·(1 - Φ(|cZ|))`` (single_cell_deg), capped at 1.
    """
    p = stats.norm.sf(np.abs(z))
    p_bh = stats.false_discovery_control(p, method="bh")
    cz = np.sign(z) * stats.norm.isf(p_bh)
    return cz, np.minimum(2 * stats.norm.sf(np.abs(cz)), 1.0)


def scde_test(first: np.ndarray, second: np.ndarray, seed: int, n_bootstrap: int = 150,
              n_points: int = 400, k: int | None = None) -> pd.DataFrame:  # fmt: skip
    """SCDE test of one group of cells against another.

    Parameters
    ----------
    first, second : (n_cells_1, n_genes), (n_cells_2, n_genes) raw integer counts; ``first`` is the
        group of interest (a positive difference means higher in ``first``).
    seed : seed of the bootstrap.
    n_bootstrap : bootstrap resamples of each group posterior (SCDE's ``n.randomizations``).

    Returns
    -------
    DataFrame, one row per gene in input order: ``mle``, ``lb``, ``ub``, ``ce`` (log2 fold change),
    ``z``, ``cz``, ``p_adj`` (two-sided, from cZ).
    """
    rng = np.random.default_rng(seed)
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    # Each group gets its own error models (references from its own cells), as SCDE fits them.
    models = [fit_error_models(group, k=k) for group in (first, second)]
    combined = ErrorModels(*(np.concatenate([getattr(m, f) for m in models])
                             for f in ("concomitant", "log_scale", "theta_curve")))  # fmt: skip
    grid, prior = expression_prior(combined, np.vstack([first, second]), n_points=n_points)
    posteriors = []
    for model, group in zip(models, (first, second), strict=True):
        table, index = cell_log_posteriors(model, group, grid)
        posteriors.append(group_posterior(table, index, n_bootstrap, rng))
    diff = difference_posterior(posteriors[0], posteriors[1], prior)
    result = summarise_difference(diff, grid[1] - grid[0])
    result["cz"], result["p_adj"] = corrected_z(result["z"].to_numpy())
    return result
