"""Pure PyTorch modules and losses (no training loops, no I/O); the wrappers live in scatlas.models."""

from scatlas.nn.clustering import (
    dec_target,
    inflate,
    kl_divergence,
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
    "inflate",
    "kl_divergence",
    "mean_activation",
    "nb_nll",
    "soft_kmeans_loss",
    "student_t_assignment",
    "weighted_centres",
    "zinb_nll",
]
