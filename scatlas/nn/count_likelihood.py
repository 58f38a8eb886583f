"""Negative binomial and zero-inflated NB likelihoods of raw counts, and the output heads that feed them.

One implementation for every count model of the project (scDMAC's denoiser, scSMD, imputation). The
formulas and clamps are DCA's (theislab/dca loss.py, network.py), shared by scziDesk and
scDeepCluster (their ``MeanAct`` / ``DispAct`` heads and NB/ZINB losses): they keep exp/lgamma finite on
real data with extreme counts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

EPS = 1e-10
MAX_THETA = 1e6


def mean_activation(x: torch.Tensor) -> torch.Tensor:
    """exp, clamped to [1e-5, 1e6] so that a large logit cannot overflow the likelihood."""
    return torch.clamp(torch.exp(x), 1e-5, 1e6)


def dispersion_activation(x: torch.Tensor) -> torch.Tensor:
    """softplus, clamped to [1e-4, 1e4]: a dispersion (inverse overdispersion) of 0 has no NB."""
    return torch.clamp(F.softplus(x), 1e-4, 1e4)


def _nb_terms(y: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor):
    """NB negative log-likelihood and log(θ / (θ + μ)), sharing the logarithms (the hot path of training).

    DCA's form t1 + t2 with t2 = (θ + y)·log(1 + μ/θ) + y·(log θ − log μ) rearranges to
    θ·(log(θ + μ) − log θ) + y·(log(θ + μ) − log μ); eps as DCA (1e-10) inside each logarithm.
    """
    log_theta = torch.log(theta + EPS)
    log_theta_mu = torch.log(theta + mu + EPS)
    t1 = torch.lgamma(theta + EPS) + torch.lgamma(y + 1.0) - torch.lgamma(y + theta + EPS)
    t2 = theta * (log_theta_mu - log_theta) + y * (log_theta_mu - torch.log(mu + EPS))
    return torch.nan_to_num(t1 + t2, nan=float("inf")), log_theta - log_theta_mu


def nb_nll(y: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Per-entry negative log-likelihood of counts under NB(mean ``mu``, dispersion ``theta``).

    Parameters
    ----------
    y
        Raw counts, any shape.
    mu
        Means on the count scale (size factor already applied), same shape as ``y``.
    theta
        Dispersions (NB ``size``; variance = mu + mu^2 / theta), broadcastable to ``y``; clamped to ≤ 1e6.

    Returns
    -------
    Tensor of the shape of ``y``; NaN (from an overflow) becomes +inf, as in DCA.
    """
    return _nb_terms(y, mu, torch.clamp(theta, max=MAX_THETA))[0]


def zinb_nll(y: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Per-entry negative log-likelihood of counts under a zero-inflated NB.

    P(y) = pi · δ0(y) + (1 − pi) · NB(y; mu, theta). Shapes and scales as :func:`nb_nll`; ``pi`` is the
    drop-out probability in (0, 1), broadcastable to ``y``.
    """
    nb, log_ratio = _nb_terms(y, mu, torch.clamp(theta, max=MAX_THETA))
    nb_case = nb - torch.log(1.0 - pi + EPS)
    # NB(0) = (θ / (θ + μ))^θ, computed from the logarithms already at hand
    zero_case = -torch.log(pi + (1.0 - pi) * torch.exp(theta * log_ratio) + EPS)
    return torch.where(y < 1e-8, zero_case, nb_case)


class ZINBLoss(nn.Module):
    """Mean ZINB (or NB, when ``pi`` is None) negative log-likelihood over all entries.

    Parameters
    ----------
    ridge
        Weight of the ridge penalty ``ridge · pi²`` on the drop-out probability (DCA ``--ridge``,
        scziDesk uses 1.0); it keeps ``pi`` from explaining every zero. 0 disables it.
    """

    def __init__(self, ridge: float = 0.0):
        super().__init__()
        self.ridge = ridge

    def forward(
        self, y: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi: torch.Tensor | None = None
    ) -> torch.Tensor:
        if pi is None:
            return nb_nll(y, mu, theta).mean()
        loss = zinb_nll(y, mu, theta, pi)
        if self.ridge:
            loss = loss + self.ridge * pi.square()
        return loss.mean()


class CountHeads(nn.Module):
    """The three ZINB heads on a decoder's last hidden layer (DCA's mean, dispersion, drop-out).

    ``forward(hidden, size_factors)`` returns ``(mean_normalized, mu, theta, pi)``, each cells × genes:
    ``mean_normalized`` is the mean on the size-factor-normalized scale (the denoised expression),
    ``mu = size_factors · mean_normalized`` the mean of the raw counts that the likelihood uses.
    ``zero_inflated=False`` drops the pi head (NB model; ``pi`` is then None).
    """

    def __init__(self, n_hidden: int, n_genes: int, zero_inflated: bool = True):
        super().__init__()
        self.mean = nn.Linear(n_hidden, n_genes)
        self.dispersion = nn.Linear(n_hidden, n_genes)
        self.dropout = nn.Linear(n_hidden, n_genes) if zero_inflated else None

    def forward(self, hidden: torch.Tensor, size_factors: torch.Tensor):
        mean_normalized = mean_activation(self.mean(hidden))
        mu = mean_normalized * size_factors.reshape(-1, 1)
        theta = dispersion_activation(self.dispersion(hidden))
        pi = torch.sigmoid(self.dropout(hidden)) if self.dropout is not None else None
        return mean_normalized, mu, theta, pi
