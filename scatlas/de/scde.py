"""SCDE-style differential expression (Kharchenko, Silberstein & Scadden, Nat Methods 2014).

A re-implementation of ``hms-dbmi/scde`` (``knn.error.models``, ``scde.expression.difference``), vectorised over cells
and genes (torch for the EM of the per-cell fits and the bootstrap of the group posteriors, numpy
elsewhere):

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
import warnings
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
        """Drop-out probability π for magnitudes ``log_e`` of shape (n_cells, ...).

        At magnitude 0 (``log_e = -inf``) π is the limit of the logistic, set by the sign of its
        leading term: 1 when ``c2 > 0`` (or ``c2 = 0`` and ``c1 < 0``), 0 when ``c2 < 0`` (or
        ``c2 = 0`` and ``c1 > 0``) — what SCDE's C++ computes there in floating point.
        """
        c = self.concomitant.reshape(self.concomitant.shape + (1,) * (log_e.ndim - 1))
        c0, c1, c2 = c[:, 0], c[:, 1], c[:, 2]
        at_zero = np.isneginf(log_e)
        safe = np.where(at_zero, 0.0, log_e)
        rising = (c2 > 0) | (c2 == 0) & (c1 < 0)  # the logit tends to +inf as log e -> -inf
        falling = (c2 < 0) | (c2 == 0) & (c1 > 0)
        leading = np.where(rising, np.inf, np.where(falling, -np.inf, c0))
        return special.expit(np.where(at_zero, leading, c0 + c1 * safe + c2 * safe**2))

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


def library_sizes(counts: np.ndarray, min_entries: int = 2000, min_count: int = 1) -> np.ndarray:
    """Library size of each cell in millions of reads, as ``estimate.library.sizes`` of SCDE.

    The genes detected (count >= ``min_count``) in the most cells — every gene detected in all
    cells, or else the top ``min_entries`` — give the column sums, scaled by TMM normalisation
    factors (edgeR's ``calcNormFactors``) that are normalised to a geometric mean of 1.

    Parameters
    ----------
    counts : (n_cells, n_genes) raw counts of all the cells compared.

    Returns
    -------
    (n_cells,) library sizes, in millions of reads.
    """
    counts = np.asarray(counts, dtype=np.float64)
    detected = (counts >= min_count).sum(0)
    order = np.argsort(-detected, kind="stable")
    entries = min(min_entries, counts.shape[1])
    if detected[order[entries - 1]] < counts.shape[0]:
        genes = order[:entries]
    else:
        genes = np.flatnonzero(detected == counts.shape[0])
    subset = counts[:, genes]
    factors = tmm_factors(subset)
    return np.maximum(subset.sum(1), 1.0) * factors / 1e6


def tmm_factors(counts: np.ndarray, logratio_trim: float = 0.3, sum_trim: float = 0.05) -> np.ndarray:
    """TMM normalisation factors of edgeR's ``calcNormFactors`` (Robinson & Oshlack 2010).

    Each cell is compared to the reference cell (upper quartile closest to the mean upper quartile):
    the precision-weighted mean of the gene log ratios, 30 % of the log ratios and 5 % of the mean
    log expressions trimmed from each end. Factors are normalised to a geometric mean of 1.

    Parameters
    ----------
    counts : (n_cells, n_genes) raw counts.
    """
    counts = counts[:, (counts > 0).any(0)]
    totals = np.maximum(counts.sum(1), 1.0)
    upper = np.quantile(counts / totals[:, None], 0.75, axis=1)
    if np.median(upper) < 1e-20:
        ref = int(np.argmax(np.sqrt(counts).sum(1)))
    else:
        ref = int(np.argmin(np.abs(upper - upper.mean())))
    factors = np.ones(counts.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ref = np.log2(counts[ref] / totals[ref])
        var_ref = (totals[ref] - counts[ref]) / totals[ref] / counts[ref]
        for c in range(counts.shape[0]):  # one vectorised comparison per cell
            log_obs = np.log2(counts[c] / totals[c])
            ratio, level = log_obs - log_ref, (log_obs + log_ref) / 2
            var = (totals[c] - counts[c]) / totals[c] / counts[c] + var_ref
            ok = np.isfinite(ratio) & np.isfinite(level)
            ratio, level, var = ratio[ok], level[ok], var[ok]
            if ratio.size == 0 or np.max(np.abs(ratio)) < 1e-6:
                continue
            n = ratio.size
            lo_ratio, lo_level = np.floor(n * logratio_trim) + 1, np.floor(n * sum_trim) + 1
            rank_ratio, rank_level = stats.rankdata(ratio), stats.rankdata(level)
            keep = (
                (rank_ratio >= lo_ratio)
                & (rank_ratio <= n + 1 - lo_ratio)
                & (rank_level >= lo_level)
                & (rank_level <= n + 1 - lo_level)
            )
            if keep.any():
                factors[c] = 2.0 ** (np.sum(ratio[keep] / var[keep]) / np.sum(1 / var[keep]))
    return factors / np.exp(np.mean(np.log(factors)))


def nearest_cells(counts: np.ndarray, k: int) -> np.ndarray:
    """The k most similar other cells of each cell, most similar first, (n_cells, k).

    Similarity = Pearson correlation of ``sqrt(counts)`` over the genes both cells detect (counts < 1
    are missing, pairwise complete observations), as ``knn.error.models``.
    """
    # Pairwise-complete Pearson correlation from five matrix products (torch: numpy's BLAS can be
    # slowed down by scipy's own copy of OpenBLAS in the same process).
    observed = torch.from_numpy((counts >= 1).astype(np.float64))
    x = torch.from_numpy(np.sqrt(counts)) * observed
    pairs = (observed @ observed.T).numpy()
    sum_x = (x @ observed.T).numpy()  # Σ x_i over genes observed in both i and j
    sum_xx = ((x * x) @ observed.T).numpy()
    sum_xy = (x @ x.T).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sum_xy - sum_x * sum_x.T / pairs
        var = (sum_xx - sum_x**2 / pairs) * (sum_xx.T - sum_x.T**2 / pairs)
        corr = cov / np.sqrt(var)
    corr = np.where(np.isfinite(corr) & (pairs >= 3), corr, -2.0)
    np.fill_diagonal(corr, -np.inf)
    return np.argsort(-corr, axis=1, kind="stable")[:, :k]


def knn_reference(
    counts: np.ndarray,
    library_size: np.ndarray,
    neighbours: np.ndarray,
    trim: float = 0.25,
    min_count: int = 1,
    genes_per_chunk: int = 2048,
) -> np.ndarray:
    """Expected magnitude of every gene in every cell from its neighbours (``knn.error.models``).

    The trimmed mean (R's ``mean(x, trim)``) of ``count / library size`` over the neighbours that
    detect the gene: counts below ``min_count`` are drop-out candidates and left out (NA in SCDE),
    so ``e`` is the magnitude the gene has when it is seen.

    Parameters
    ----------
    counts : (n_cells, n_genes) raw counts of one group.
    library_size : (n_cells,) library sizes (millions of reads).
    neighbours : (n_cells, k) from :func:`nearest_cells`.

    Returns
    -------
    (n_cells, n_genes) expected magnitudes in counts per million; NaN where no neighbour detects
    the gene.
    """
    n_cells, k = neighbours.shape
    fpm = np.where(counts >= min_count, counts / library_size[:, None], np.nan).astype(np.float32)
    out = np.empty(counts.shape)
    for start in range(0, counts.shape[1], genes_per_chunk):
        values = np.sort(fpm[:, start : start + genes_per_chunk][neighbours], axis=1)  # NaN sort last
        n = (~np.isnan(values)).sum(1)  # (n_cells, chunk)
        lo = np.floor(n * trim).astype(np.int64)
        hi = n - lo
        # Only the first n sorted values of a (cell, gene) are summed: the NaNs after them never are.
        cumulative = np.zeros((n_cells, k + 1, values.shape[2]), dtype=np.float32)
        np.cumsum(values, axis=1, out=cumulative[:, 1:])
        total = (np.take_along_axis(cumulative, hi[:, None], 1) - np.take_along_axis(cumulative, lo[:, None], 1))[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, start : start + genes_per_chunk] = total / (hi - lo)
    return out


def fit_error_models(
    counts: np.ndarray,
    library_size: np.ndarray | None = None,
    k: int | None = None,
    n_iter: int = 50,
    min_nonfailed: int = 5,
    min_count: int = 1,
    tol: float = 1e-6,
) -> ErrorModels:
    """Fit the per-cell error models of one group of cells by EM (``knn.error.models``).

    Parameters
    ----------
    counts : (n_cells, n_genes) raw integer counts of the cells of ONE group (SCDE fits each group
        against references from its own cells).
    library_size : (n_cells,) library sizes in millions (:func:`library_sizes`, which SCDE computes
        over all the cells compared); default: computed from ``counts``.
    k : neighbours of the reference; default half the group.
    n_iter : EM iterations at most (flexmix's ``iter = 50``).
    min_nonfailed : a gene enters a cell's fit when at least this many of its neighbours have a
        count above ``min_count`` (``min.nonfailed``, ``min.count.threshold``).
    tol : a cell's EM stops when its log likelihood changes by less than ``tol·(|loglik| + 0.1)``
        (flexmix's criterion and default).

    Returns
    -------
    :class:`ErrorModels` with one row per cell, in the input order.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_cells = counts.shape[0]
    if n_cells < 2:
        raise ValueError("an error model needs at least two cells in the group")
    if library_size is None:
        library_size = library_sizes(counts)
    k = max(1, min(n_cells - 1, k if k is not None else int(np.floor(n_cells / 2 + 0.5))))
    neighbours = nearest_cells(counts, k)
    e = knn_reference(counts, library_size, neighbours, min_count=min_count)
    # genes the reference supports: enough neighbours with a count above min_count.
    indicator = np.zeros((n_cells, n_cells))
    np.put_along_axis(indicator, neighbours, 1.0, axis=1)
    support = (torch.from_numpy(indicator) @ torch.from_numpy((counts > min_count).astype(np.float64))).numpy()
    used = np.isfinite(e) & (e > 0) & (support >= min(min_nonfailed, k))
    log_e = np.log(np.where(used, e, 1.0))
    w = used.astype(np.float64)

    # Initial drop-out labels: a count <= min_count where the reference is at least the median
    # magnitude of that cell's low-count genes.
    low = used & (counts <= min_count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell without low-count genes: NaN
        low_median = np.nanmedian(np.where(low, log_e, np.nan), axis=1)
    failed = np.where(low & (log_e >= np.nan_to_num(low_median, nan=np.inf)[:, None]), 1 - 1e-6, 1e-6)

    # The EM runs on the genes some cell uses; a gene a cell does not use has weight 0 there. The
    # elementwise work is done by torch (float64; its transcendental functions are vectorised), in
    # one thread: each operation takes a few ms, and on a busy machine the hand-offs between
    # threads cost more than they save.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_em(counts, log_e, w, failed, used.any(0), n_iter, tol)
    finally:
        torch.set_num_threads(threads)


def _fit_em(counts, log_e, w, failed, genes, n_iter, tol):
    """EM of :func:`fit_error_models` from the initial drop-out labels ``failed`` (numpy in)."""
    n_cells = counts.shape[0]
    theta = _theta_curve_start(counts[:, genes], log_e[:, genes], w[:, genes])
    bins = _magnitude_bins(log_e[:, genes], w[:, genes])
    y, log_e, w, failed = (torch.from_numpy(np.ascontiguousarray(a[:, genes])) for a in (counts, log_e, w, failed))
    likelihood = _MixtureLikelihood(y)
    concomitant = _Concomitant(log_e, w)
    conc = torch.zeros((n_cells, 3), dtype=torch.float64)
    log_scale = torch.zeros(n_cells, dtype=torch.float64)
    theta = torch.from_numpy(theta)
    previous = torch.full((n_cells,), -np.inf, dtype=torch.float64)
    active = torch.ones(n_cells, dtype=torch.bool)  # flexmix fits every cell on its own: a converged cell stops
    iteration = 0
    for iteration in range(1, n_iter + 1):  # noqa: B007 - reported after the loop
        # M-step: drop-out logit, NB slope (Poisson GLM, identity link, no intercept), θ curve.
        new_conc = concomitant.fit(failed, conc)
        nb_weight = w * (1 - failed)
        scale = (nb_weight * y).sum(1) / (nb_weight * log_e.exp()).sum(1).clamp(min=1e-300)
        new_log_scale = scale.clamp(min=1e-300).log()
        new_theta = _fit_theta_curve(y, new_log_scale[:, None] + log_e, log_e, nb_weight, theta, bins)
        conc = torch.where(active[:, None], new_conc, conc)
        log_scale = torch.where(active, new_log_scale, log_scale)
        theta = torch.where(active[:, None], new_theta, theta)
        # E-step: responsibilities of the drop-out component.
        log_nb, log_fail = likelihood.components(conc, log_scale, theta, log_e)
        total = torch.logaddexp(log_nb, log_fail)
        failed = torch.where(active[:, None], (log_fail - total).exp(), failed)
        loglik = (w * total).sum(1)
        active &= (loglik - previous).abs() / (loglik.abs() + 0.1) >= tol  # flexmix's criterion
        previous = loglik
        if not active.any():
            break
    log.debug("error models of %d cells: %d EM iterations, %d not converged", n_cells, iteration, int(active.sum()))
    return ErrorModels(conc.numpy(), log_scale.numpy(), theta.numpy())


class _MixtureLikelihood:
    """The two log terms of the error model for fixed counts (torch), count-only parts precomputed."""

    def __init__(self, counts):
        self.counts = counts
        self.log_factorial = torch.lgamma(counts + 1)
        self.log_poisson = counts * np.log(FAILURE_RATE) - FAILURE_RATE - self.log_factorial

    def components(self, conc, log_scale, theta_curve, log_e):
        """``log[(1-π)·NB(r; a·e, θ(e))]`` and ``log[π·Poisson(r; 0.1)]`` for magnitudes ``log_e``."""
        eta = conc[:, [0]] + conc[:, [1]] * log_e + conc[:, [2]] * log_e**2
        log_pi = torch.nn.functional.logsigmoid(eta)  # log π; log(1 - π) = log π - η
        log_theta = (-_logistic5(theta_curve, log_e, torch)).clamp(*np.log(THETA_RANGE))
        theta = log_theta.exp()
        log_mu = log_scale[:, None] + log_e
        log_total = torch.logaddexp(log_theta, log_mu)  # log(θ + μ)
        log_nb = theta * (log_theta - log_total) + self.counts * (log_mu - log_total) - self.log_factorial
        log_nb += torch.lgamma(self.counts + theta) - torch.lgamma(theta)  # exactly 0 where the count is 0
        return log_pi - eta + log_nb, log_pi + self.log_poisson


class _Concomitant:
    """The drop-out logit ``c0 + c1·log e + c2·(log e)²`` of every cell, fitted by Newton's method.

    Weighted logistic regression of soft labels (the drop-out responsibilities), as flexmix's
    multinomial concomitant model; torch tensors. Log e is standardised per cell for conditioning;
    the design has only powers of it, so gradient and Hessian come from power sums. Steps are
    halved until the log likelihood rises, and a tiny ridge (``ridge`` per unit weight, standardised
    scale) keeps the fit finite when the labels are separable.
    """

    def __init__(self, log_e, weight, ridge: float = 1e-6):
        n_used = weight.sum(1).clamp(min=1)  # weights are 0 / 1
        self.centre = (weight * log_e).sum(1) / n_used
        spread = ((weight * (log_e - self.centre[:, None]) ** 2).sum(1) / n_used).sqrt()
        self.spread = torch.where(spread > 0, spread, torch.ones_like(spread))
        t = (log_e - self.centre[:, None]) / self.spread[:, None]
        self.powers = [t, t**2, t**3, t**4]
        self.weight = weight
        unpenalised_intercept = torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
        self.penalty = ridge * weight.sum(1)[:, None, None] * unpenalised_intercept

    def to_standard(self, coef):
        m, s = self.centre, self.spread
        c0, c1, c2 = coef.T
        return torch.stack([c0 + c1 * m + c2 * m**2, s * (c1 + 2 * c2 * m), c2 * s**2], dim=1)

    def to_log_e(self, beta):
        m, s = self.centre, self.spread
        b0, b1, b2 = beta.T
        return torch.stack([b0 - b1 * m / s + b2 * m**2 / s**2, b1 / s - 2 * b2 * m / s**2, b2 / s**2], dim=1)

    def _objective(self, beta, target):
        eta = beta[:, [0]] + beta[:, [1]] * self.powers[0] + beta[:, [2]] * self.powers[1]
        softplus = torch.logaddexp(eta, torch.zeros(()).double())
        loglik = (self.weight * (target * eta - softplus)).sum(1)
        return loglik - 0.5 * torch.einsum("ci,cij,cj->c", beta, self.penalty, beta), (eta - softplus).exp()

    def fit(self, target, start, n_newton: int = 6, max_halvings: int = 30, tol: float = 1e-10):
        """Coefficients (cells, 3) on log e for drop-out responsibilities ``target``, from ``start``."""
        beta = self.to_standard(start)
        value, p = self._objective(beta, target)
        index = torch.from_numpy(np.add.outer(np.arange(3), np.arange(3)))
        for _ in range(n_newton):
            residual, curvature = self.weight * (target - p), self.weight * p * (1 - p)
            grad = torch.stack([residual.sum(1)] + [(residual * self.powers[i]).sum(1) for i in range(2)], dim=1)
            grad -= torch.einsum("cij,cj->ci", self.penalty, beta)
            moments = torch.stack([curvature.sum(1)] + [(curvature * self.powers[i]).sum(1) for i in range(4)], dim=1)
            hess = moments[:, index] + self.penalty + 1e-12 * torch.eye(3, dtype=torch.float64)
            step = torch.linalg.solve(hess, grad)
            # Newton's predicted gain; below tol (relative) the cell has converged.
            if bool(((grad * step).sum(1) <= tol * value.abs()).all()):
                break
            size = torch.ones(len(beta), dtype=torch.float64)
            slack = 1e-12 * value.abs()  # rounding: a converged cell's step changes nothing
            for _ in range(max_halvings):
                trial_value, trial_p = self._objective(beta + size[:, None] * step, target)
                worse = ~(trial_value >= value - slack)  # NaN counts as worse
                if not worse.any():
                    break
                size = torch.where(worse, size / 2, size)
            accept = trial_value >= value - slack
            beta = torch.where(accept[:, None], beta + size[:, None] * step, beta)
            value = torch.where(accept, trial_value, value)
            p = torch.where(accept[:, None], trial_p, p)
        return self.to_log_e(beta)


def _point_log_alpha(counts, log_mu, xp=np):
    """Per-gene log(1/θ) estimates ``log[(y/μ - 1)² - 1/μ]``, clamped to the fit range (nb2gth)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # numpy: inf / NaN replaced below
        mu = xp.exp(log_mu)
        alpha = ((counts / mu - 1) ** 2 - 1 / mu).clip(1 / THETA_RANGE[1], 1 / THETA_RANGE[0])
        return xp.log(xp.where(xp.isfinite(alpha), alpha, 1 / THETA_RANGE[1]))


def _theta_curve_start(counts, log_e, weight):
    """nb2gth's start of the θ curve: 2.5 % quantile of log alpha over the lower half of the log e
    range, 97.5 % quantile over the upper half, the middle of the range, S = -1, R = 0.5."""
    used = weight > 0
    log_scale = np.log(
        np.maximum((weight * counts).sum(1), 1e-300) / np.maximum((weight * np.exp(log_e)).sum(1), 1e-300)
    )
    log_alpha = _point_log_alpha(counts, log_scale[:, None] + log_e)
    lowest = np.where(used, log_e, np.inf).min(1, keepdims=True)
    mid = (lowest + np.where(used, log_e, -np.inf).max(1, keepdims=True)) / 2
    low = used & (log_e < mid)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell with no gene in one half: NaN, replaced below
        bottom = np.nanquantile(np.where(low, log_alpha, np.nan), 0.025, axis=1)
        top = np.nanquantile(np.where(used & ~low, log_alpha, np.nan), 0.975, axis=1)
    start = np.column_stack([bottom, top, mid[:, 0], np.full(len(mid), -1.0), np.full(len(mid), 0.5)])
    start = np.where(np.isfinite(start), start, [0.0, 0.0, 0.0, -1.0, 0.5])
    return np.clip(start, THETA_LOWER, THETA_UPPER)


def _magnitude_bins(log_e, weight, n_bins: int = 128):
    """Bin of every (cell, gene) for :func:`_fit_theta_curve`: ``n_bins`` equal bins of log e per
    cell, numbered cell by cell (cell c owns ``c·n_bins .. (c + 1)·n_bins - 1``)."""
    edges = np.linspace(log_e[weight > 0].min(), log_e[weight > 0].max() + 1e-9, n_bins + 1)
    inner = np.clip(np.searchsorted(edges, log_e) - 1, 0, n_bins - 1)
    return torch.from_numpy((np.arange(log_e.shape[0])[:, None] * n_bins + inner).ravel()), n_bins


def _fit_theta_curve(counts, log_mu, log_e, weight, start, bins, max_steps: int = 30):
    """Weighted least-squares fit of the 5-parameter logistic to per-gene log(1/θ), all cells at once.

    Per gene ``alpha = (y/μ - 1)² - 1/μ`` clamped to [1/100, 1/0.01], weights ``w·sqrt(alpha)``
    (scde's ``nb2gth`` M-step), fitted within scde's bounds by Levenberg–Marquardt from ``start``
    (scde: nlminb). The squares are summed over the magnitude ``bins`` of :func:`_magnitude_bins`
    (weighted means of log e and log alpha): the same fit up to the curvature of the logistic
    within a bin. Torch tensors in and out; the small least squares run in numpy.
    """
    log_alpha = _point_log_alpha(counts, log_mu, torch)
    fit_weight = weight * (log_alpha / 2).exp()
    n_cells = counts.shape[0]
    slot, n_bins = bins
    total, sum_x, sum_y = (
        torch.bincount(slot, (fit_weight * v).ravel(), n_cells * n_bins).view(n_cells, -1).numpy()
        for v in (torch.ones_like(log_e), log_e, log_alpha)
    )
    scale = np.maximum(total.sum(1, keepdims=True), 1e-300)
    x, y = sum_x / np.maximum(total, 1e-300), sum_y / np.maximum(total, 1e-300)
    return torch.from_numpy(_levenberg_marquardt(start.numpy(), x, y, total / scale, max_steps))


def _logistic5_jacobian(p, x):
    """The 5-parameter logistic of :func:`_logistic5` at x (cells, bins) and its Jacobian (cells, bins, 5)."""
    b, t, m, s, r = (p[:, [i]] for i in range(5))
    ln10 = np.log(10.0)
    u = (m - x) * s * ln10
    softplus = np.logaddexp(u, 0.0)
    g = np.exp(-r * softplus)
    d_u = -(t - b) * g * r * special.expit(u)
    jacobian = np.stack([1 - g, g, d_u * s * ln10, d_u * (m - x) * ln10, -(t - b) * g * softplus], axis=-1)
    return b + (t - b) * g, jacobian


def _levenberg_marquardt(params, x, y, weight, max_steps: int, tol: float = 1e-8):
    """Box-constrained weighted least squares of :func:`_logistic5` for every cell at once."""
    params = params.copy()
    damping = np.full(len(params), 1e-3)
    fitted, jacobian = _logistic5_jacobian(params, x)
    loss = (weight * (y - fitted) ** 2).sum(1)
    for _ in range(max_steps):
        jw = jacobian * weight[..., None]
        normal = np.einsum("cbi,cbj->cij", jw, jacobian)
        gradient = np.einsum("cbi,cb->ci", jw, y - fitted)
        diagonal = np.einsum("cii->ci", normal) + 1e-12
        damped = normal + (damping[:, None] * diagonal)[..., None] * np.eye(5)
        step = np.linalg.solve(damped, gradient[..., None])[..., 0]
        trial = np.clip(params + step, THETA_LOWER, THETA_UPPER)
        trial_fitted, trial_jacobian = _logistic5_jacobian(trial, x)
        trial_loss = (weight * (y - trial_fitted) ** 2).sum(1)
        better = trial_loss < loss
        # converged: a step that gains (almost) nothing, or no step left that gains anything
        done = better & (loss - trial_loss <= tol * loss) | ~better & (damping > 1e6)
        params = np.where(better[:, None], trial, params)
        fitted = np.where(better[:, None], trial_fitted, fitted)
        jacobian = np.where(better[:, None, None], trial_jacobian, jacobian)
        loss = np.where(better, trial_loss, loss)
        damping = np.where(better, damping / 3, damping * 4)
        if done.all():
            break
    return params


# --------------------------------------------------------------------------------------------
# 2. Prior on expression magnitude


def expression_prior(
    models: ErrorModels, counts: np.ndarray, n_points: int = 400, bandwidth: float = 0.1, max_quantile: float = 0.999
) -> tuple[np.ndarray, np.ndarray]:
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
    # A zero count has magnitude -inf, where SCDE's drop-out probability is the logistic's limit, 0 or
    # 1 by the sign of an extrapolated quadratic term (NaN -> 0 when the two terms cancel): the zeros
    # of a cell then weigh all or nothing. Here they weigh as a count at the lowest magnitude
    # observed (the simulation of benchmarks/de.py: SCDE's rule ranks DE genes a little worse).
    weights = 1 - models.failure_probability(np.where(finite, log_fpm, lowest))
    weights = (weights / weights.sum()).ravel()
    x_max = float(np.quantile(x, max_quantile))
    if x_max <= 0:
        x_max = float(x.max()) or 1.0
    # Weighted Gaussian KDE of the mirrored sample {-x, x} on 2·n_points + 1 points from -x_max to
    # x_max, as R's density(): linear binning onto the grid extended by 4 bandwidths each side (so
    # the values beyond x_max still reach the edge), then a discrete Gaussian convolution.
    grid = np.linspace(0.0, x_max, n_points + 1)
    step = grid[1] - grid[0]
    pad = int(np.ceil(4 * bandwidth / step))
    extended = np.arange(-(n_points + pad), n_points + pad + 1) * step
    values = np.concatenate([-x.ravel(), x.ravel()])
    mass = np.concatenate([weights, weights]) / 2
    pos = (values - extended[0]) / step
    keep = (pos >= 0) & (pos <= extended.size - 1)
    left = np.minimum(np.floor(pos[keep]).astype(np.int64), extended.size - 2)
    frac = pos[keep] - left
    binned = np.bincount(left, mass[keep] * (1 - frac), minlength=extended.size) + np.bincount(
        left + 1, mass[keep] * frac, minlength=extended.size
    )
    kernel = stats.norm.pdf(np.arange(-pad, pad + 1) * step, scale=bandwidth)
    density = signal.fftconvolve(binned, kernel, mode="same")[pad + n_points : pad + 2 * n_points + 1]
    # R: density + pseudo.count / nrow(fpkm), nrow = the number of genes.
    prior = np.maximum(density, 0) / step + 1.0 / counts.shape[1]
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
        # Grid snap: a count between two grid means (or beyond the last) takes the lower one's place,
        # so the peak is hit (jpmatLogBoot.cpp).
        snap = np.searchsorted(mu[0], values, side="right") - 1
        ok = snap >= 0
        mu[np.nonzero(ok)[0], snap[ok]] = values[ok]
        lik = _likelihood_on_grid(models, c, r, mu, log_m)
        lik = lik - special.logsumexp(lik, axis=1, keepdims=True)
        tables.append(np.maximum(lik, floor).astype(np.float32))
        index[c] = offset + inverse.reshape(-1)
        offset += values.size
    return np.concatenate(tables), index


def _likelihood_on_grid(models, c, r, mu, log_m):
    """log P(r | m_k) of cell c for distinct counts r (n, 1), means mu (n, K), magnitudes log_m (K,).

    At the first grid point (magnitude 0, ``log_m = -inf``) the NB mean is 0, so a count above 0 is
    possible only as a drop-out, with π's limit there (:meth:`ErrorModels.failure_probability`), as
    in SCDE: a cell whose drop-out probability falls to 0 at low magnitude rules magnitude 0 out
    for a gene it detects. θ does not matter there (an NB of mean 0 is 1 at 0 and 0 elsewhere).
    """
    finite = np.isfinite(log_m)
    log_m_safe = np.where(finite, log_m, log_m[finite].min())[None, :]
    one = ErrorModels(models.concomitant[[c]], models.log_scale[[c]], models.theta_curve[[c]])
    pi = one.failure_probability(log_m[None, :])
    theta = np.clip(np.exp(-_logistic5(models.theta_curve[[c]], log_m_safe, np)), 0.01, 1000.0)
    return mixture_logpmf(r, mu, pi, theta)


def group_posterior(
    table: np.ndarray, index: np.ndarray, n_bootstrap: int, rng: np.random.Generator, genes_per_chunk: int = 64
) -> np.ndarray:
    """Joint posterior of each gene's magnitude in a group of cells, with the bootstrap.

    For b = 1..B the group's cells are resampled with replacement, their log posteriors summed per
    gene and normalised over the grid; the B posteriors are averaged. B = 0 gives the plain product
    over all cells. Genes with the same counts in every cell have the same posterior: each distinct
    count pattern is computed once.

    Parameters
    ----------
    table, index : from :func:`cell_log_posteriors` for the group's cells (index: (n_cells, n_genes)).
    n_bootstrap : B (SCDE: 150 in ``scde.expression.difference``).
    rng : the seeded generator of the resamples.

    Returns
    -------
    (n_genes, n_grid) posterior probabilities, each row summing to 1.
    """
    n_cells = index.shape[0]
    if n_bootstrap > 0:
        draws = rng.integers(0, n_cells, size=(n_bootstrap, n_cells))
        multiplicity = np.stack([np.bincount(d, minlength=n_cells) for d in draws]).astype(np.float32)
    else:
        multiplicity = np.ones((1, n_cells), dtype=np.float32)
    patterns, inverse = np.unique(index, axis=1, return_inverse=True)
    weights = torch.from_numpy(multiplicity)
    lookup = torch.from_numpy(table)
    out = np.empty((patterns.shape[1], table.shape[1]))
    for start in range(0, patterns.shape[1], genes_per_chunk):
        rows = torch.from_numpy(patterns[:, start : start + genes_per_chunk])
        per_cell = lookup[rows]  # (cells, chunk, grid)
        joint = (weights @ per_cell.reshape(n_cells, -1)).reshape(len(weights), rows.shape[1], -1)
        posterior = torch.softmax(joint, dim=-1).mean(0)  # float32: posteriors only feed sums
        out[start : start + rows.shape[1]] = posterior.numpy()
    return out[inverse.reshape(-1)]


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


def scde_test(
    first: np.ndarray, second: np.ndarray, seed: int, n_bootstrap: int = 150, n_points: int = 400, k: int | None = None
) -> pd.DataFrame:
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
    library_size = library_sizes(np.vstack([first, second]))  # over all cells, as knn.error.models
    # knn.error.models' default k is half of ALL the cells (R's round), capped at the group size - 1:
    # with two groups of equal size every other cell of the group is a neighbour.
    k = k if k is not None else round((len(first) + len(second)) / 2)
    groups = (first, second)
    models = [
        fit_error_models(group, size, k=k)
        for group, size in zip(groups, np.split(library_size, [len(first)]), strict=True)
    ]
    combined = ErrorModels(
        *(np.concatenate([getattr(m, f) for m in models]) for f in ("concomitant", "log_scale", "theta_curve"))
    )
    grid, prior = expression_prior(combined, np.vstack(groups), n_points=n_points)
    posteriors = [
        group_posterior(*cell_log_posteriors(model, group, grid), n_bootstrap, rng)
        for model, group in zip(models, groups, strict=True)
    ]
    diff = difference_posterior(posteriors[0], posteriors[1], prior)
    result = summarise_difference(diff, grid[1] - grid[0])
    result["cz"], result["p_adj"] = corrected_z(result["z"].to_numpy())
    return result
