"""LATE's network and loss (Badsha et al., Quant. Biol. 2020; code audreyqyfu/LATE): a fully connected
autoencoder on log1p expression whose reconstruction error counts the observed (non-zero) entries only.

Pure module and loss; training, early stopping, seeding and devices are in :mod:`scatlas.models.late`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


def nonzero_mse(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """LATE's ``mse_nz``: squared error over the non-zero entries of ``x``, divided by the number of **all**
    entries (the reference's denominator, not the number of non-zeros).

    ``x`` and ``reconstruction``: cells × genes on the same log1p scale. A zero of ``x`` is unobserved
    (a drop-out, or an entry hidden for evaluation): it adds nothing to the loss or to its gradient, whatever
    the network predicts there. Computed in float32.
    """
    x, reconstruction = x.float(), reconstruction.float()
    return torch.where(x > 0, (x - reconstruction).square(), 0.0).sum() / x.numel()


class LateAutoencoder(nn.Module):
    """``n_genes → hidden[0] → … → hidden[-1] → … → hidden[0] → n_genes``, every layer (the output's too)
    ``ReLU(Linear(Dropout(input)))`` as in LATE (its ``tf.nn.dropout`` before each product).

    LATE gives dropout as **keep** probabilities (``pIn`` 0.8 at the input, ``pHidden`` 0.5 elsewhere);
    here ``input_dropout`` and ``hidden_dropout`` are the shares **dropped** (0.2 and 0.5), torch's meaning.
    ``hidden`` (800, 400) is LATE's five-layer default; (400,) its three-layer one. Weights ~ N(0, init_sd),
    biases ~ N(100 · init_sd, init_sd) (LATE's initialisation: every ReLU starts active); init_sd ≤ 0 keeps
    torch's default initialisation.

    ``forward(x)``: cells × genes log1p expression → its reconstruction on the same scale (non-negative).
    ``encode(x)``: the bottleneck activation (cells × hidden[-1]).
    """

    def __init__(
        self,
        n_genes: int,
        hidden: Sequence[int] = (800, 400),
        input_dropout: float = 0.2,
        hidden_dropout: float = 0.5,
        init_sd: float = 1e-3,
    ):
        super().__init__()
        sizes = [n_genes, *hidden, *reversed(hidden[:-1]), n_genes]
        self.n_encoder = len(hidden)
        self.layers = nn.ModuleList()
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            self.layers.append(
                nn.Sequential(
                    nn.Dropout(input_dropout if i == 0 else hidden_dropout), nn.Linear(n_in, n_out), nn.ReLU()
                )
            )
        if init_sd > 0:
            for layer in self.layers:
                linear = layer[1]
                nn.init.normal_(linear.weight, 0.0, init_sd)
                nn.init.normal_(linear.bias, 100 * init_sd, init_sd)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[: self.n_encoder]:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`nonzero_mse` of the reconstruction of ``x`` (cells × genes, log1p)."""
        return nonzero_mse(x, self(x))
