"""Pure PyTorch modules and losses (no training loops, no I/O); the wrappers live in scatlas.models."""

from scatlas.nn.clustering import (
    dec_target,
    fuzzy_memberships,
    inflate,
    kl_divergence,
    pairwise_similarity_loss,
    soft_kmeans_loss,
    student_t_assignment,
    weighted_centres,
)
from scatlas.nn.count_likelihood import CountHeads, ZINBLoss, dispersion_activation, mean_activation, nb_nll, zinb_nll

__all__ = [
    "CountHeads",
    "ZINBLoss",
    "dec_target",
    "dispersion_activation",
    "fuzzy_memberships",
    "inflate",
    "kl_divergence",
    "mean_activation",
    "nb_nll",
    "pairwise_similarity_loss",
    "soft_kmeans_loss",
    "student_t_assignment",
    "weighted_centres",
    "zinb_nll",
]
