"""scQuery's supervised embedding networks and losses (Alavi et al., Nat. Commun. 2018; code AmirAlavi/scrna_nn):
a fully connected network on log expression whose last hidden layer is the embedding, trained as a cell-type
classifier (softmax head), as a siamese twin (contrastive loss) or on triplets (batch-hard, soft margin).

Pure modules and losses, and the retrieval's type-similarity rule (numpy); training, pair and triplet sampling,
seeding and devices are in
:mod:`scatlas.models.embed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class EmbeddingNetwork(nn.Module):
    """``n_genes → hidden[0] → … → hidden[-1]``, tanh after every layer (scQuery's default activation), the
    last one linear when ``linear_last`` (scQuery's triplet networks); a softmax head over ``n_types`` cell
    types on top when ``n_types`` > 0 (the dense classifier). ``dropout``: the share of each layer's input
    dropped in training (0: none, scQuery's).

    ``embed(x)``: cells × genes log expression → cells × hidden[-1], the embedding.
    ``forward(x)``: the head's logits (cells × n_types).
    """

    def __init__(
        self,
        n_genes: int,
        hidden: Sequence[int] = (1136, 100),
        n_types: int = 0,
        linear_last: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        sizes = [n_genes, *hidden]
        self.linear_last = linear_last
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.head = nn.Linear(hidden[-1], n_types) if n_types > 0 else None

    def activation(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return h if (self.linear_last and i == len(self.layers) - 1) else torch.tanh(h)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = self.activation(i, layer(self.dropout(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise ValueError("this network has no classifier head (siamese / triplet): use embed()")
        return self.head(self.embed(x))


def denoising_layer_loss(
    layer: nn.Linear, decoder: nn.Linear, x: torch.Tensor, noise: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One step of scQuery's greedy pretraining: the layer's tanh code of ``x`` + ``noise`` · N(0, 1), decoded
    linearly, against ``x`` (mean squared error)."""
    corrupted = x + noise * torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return F.mse_loss(decoder(torch.tanh(layer(corrupted))).float(), x.float())


def pair_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """scQuery's ``sqrt(max(Σ (a - b)², eps))`` per pair (rows of ``a`` and ``b``), float32."""
    return (a.float() - b.float()).square().sum(dim=1).clamp_min(eps).sqrt()


def contrastive_loss(
    distance: torch.Tensor, same: torch.Tensor, margin: float = 1.0, similarity: torch.Tensor | None = None
) -> torch.Tensor:
    """The siamese loss over pairs: ``mean(y·D² + (1 − y)·max(m − D, 0)²)`` (margin ``m`` = 1, scQuery's);
    with ``similarity`` (the two types' ontology similarity s ∈ [0, 1], per pair) the dynamic margin of
    scQuery: different-type pairs are pushed apart to ``(1 − s)·m`` only, and the loss is
    ``mean(y·D² + (1 − y)·0.5·max((1 − s)·m − D, 0)²)``.

    ``distance``: pairs' :func:`pair_distance`; ``same``: 1 for a same-type pair, 0 otherwise.
    """
    same = same.float()
    if similarity is None:
        apart = (margin - distance).clamp_min(0).square()
    else:
        apart = 0.5 * ((1 - similarity.float()) * margin - distance).clamp_min(0).square()
    return (same * distance.square() + (1 - same) * apart).mean()


def batch_hard_triplet_loss(embedding: torch.Tensor, labels: torch.Tensor, margin: float | None = None) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017, scQuery's triplet networks): per anchor, its farthest
    same-type and nearest other-type cell of the batch; ``softplus(D⁺ − D⁻)`` (the soft margin, scQuery's
    default), or ``max(D⁺ − D⁻ + margin, 0)`` with a margin. Anchors without a positive or negative count zero."""
    e = embedding.float()
    distance = torch.cdist(e, e).clamp_min(0)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = torch.where(same & ~eye, distance, torch.zeros_like(distance)).amax(dim=1)
    negative = torch.where(same, torch.full_like(distance, float("inf")), distance).amin(dim=1)
    valid = ((same & ~eye).any(dim=1)) & (~same).any(dim=1)
    gap = positive - negative
    loss = F.softplus(gap) if margin is None else (gap + margin).clamp_min(0)
    return torch.where(valid, loss, torch.zeros_like(loss)).sum() / valid.sum().clamp_min(1)


def type_similarity(distances: np.ndarray, neighbour_types: np.ndarray, n_types: int) -> np.ndarray:
    """Per query cell and type, Σ over its neighbours of that type of ``1 / (1 + D)``, normalised to sum 1.

    ``distances``, ``neighbour_types``: cells × k (the index's distances, the neighbours' type codes).
    Returns cells × ``n_types``, float64, rows summing to 1.
    """
    weights = 1.0 / (1.0 + np.asarray(distances, dtype=np.float64))
    scores = np.zeros((weights.shape[0], n_types))
    rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
    np.add.at(scores, (rows, np.asarray(neighbour_types).ravel()), weights.ravel())
    return scores / scores.sum(axis=1, keepdims=True)
