"""Clustering heads on an embedding: weighted soft K-means with inflation, Student-t assignment, DEC target.

All functions take an embedding ``z`` (cells × latent) and centres (clusters × latent) and are
differentiable in both. Formulas: scDMAC (Xu et al. 2026, Eq. 16–22), scziDesk's soft K-means with
inflation, DEC/scDeepCluster's Student-t kernel and target (xuebaliang/scziDesk, ttgump/scDeepCluster).
"""

from __future__ import annotations

import torch


def squared_distances(z: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """‖z_i − c_k‖², cells × clusters."""
    return torch.cdist(z, centres).square()


def inflate(weights: torch.Tensor, power: float) -> torch.Tensor:
    """Markov-clustering-style inflation: w_ik ← w_ik^r / Σ_k w_ik^r (rows sum to 1; r > 1 sharpens)."""
    powered = weights.clamp_min(1e-12).pow(power)
    return powered / powered.sum(dim=1, keepdim=True)


def soft_kmeans_weights(z: torch.Tensor, centres: torch.Tensor, inflation: float = 2.0) -> torch.Tensor:
    """w_ik = inflate(softmax_k(−‖z_i − c_k‖²)), cells × clusters."""
    return inflate(torch.softmax(-squared_distances(z, centres), dim=1), inflation)


def soft_kmeans_loss(z: torch.Tensor, centres: torch.Tensor, inflation: float = 2.0) -> torch.Tensor:
    """Weighted K-means loss: mean over cells of Σ_k w_ik ‖z_i − c_k‖² with inflated soft weights."""
    distances = squared_distances(z, centres)
    weights = inflate(torch.softmax(-distances, dim=1), inflation)
    return (weights * distances).sum(dim=1).mean()


def weighted_centres(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """c_k = Σ_i w_ik z_i / Σ_i w_ik, clusters × latent."""
    return (weights.T @ z) / weights.sum(dim=0).clamp_min(1e-12).unsqueeze(1)


def student_t_assignment(z: torch.Tensor, centres: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """q_ik ∝ (1 + ‖z_i − μ_k‖² / t)^(−(t + 1)/2), rows normalised to 1 (t = ``dof``)."""
    kernel = (1.0 + squared_distances(z, centres) / dof).pow(-(dof + 1.0) / 2.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """DEC target p_ik ∝ q_ik² / f_k with cluster frequency f_k = Σ_i q_ik; rows normalised to 1.

    Squaring sharpens confident assignments; dividing by f_k keeps large clusters from absorbing
    the rest. Computed without gradient: it is a fixed target for the KL loss.
    """
    with torch.no_grad():
        weight = q.square() / q.sum(dim=0, keepdim=True)
        return weight / weight.sum(dim=1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(P ‖ Q) = mean over cells of Σ_k p_ik log(p_ik / q_ik)."""
    return (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(dim=1).mean()


def fuzzy_memberships(z: torch.Tensor, centres: torch.Tensor, fuzziness: float = 1.5) -> torch.Tensor:
    """Fuzzy c-means memberships (scSMD Module 1): p_ik ∝ d_ik^(−1/(m−1)), d_ik = ‖z_i − c_k‖², rows sum to 1.

    A cell on a centre belongs to it alone (its distance is floored at 1e-12).
    """
    scaled = squared_distances(z, centres).clamp_min(1e-12).log() * (-1.0 / (fuzziness - 1.0))
    return torch.softmax(scaled, dim=1)


def pairwise_similarity_loss(q: torch.Tensor, similarity: torch.Tensor, threshold: float = 0.8) -> torch.Tensor:
    """CellNet's loss (scSMD Eq. 14–15), mean over cell pairs (i, j) of a batch:
    [S_ij ≥ δ] (1 − q_iᵀq_j) + [S_ij ≤ 1 − δ] q_iᵀq_j, with S the pairs' similarity (p pᵀ in phase 1, the
    network's own q qᵀ in phase 2) and δ = ``threshold``. Pairs in between do not count."""
    agreement = q @ q.T
    loss = (similarity >= threshold) * (1.0 - agreement) + (similarity <= 1.0 - threshold) * agreement
    return loss.mean()
