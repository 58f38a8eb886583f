"""scDMAC's networks (Xu et al., Front. Bioinform. 2026, Methods): the ZINB denoising autoencoder and the
masking autoencoder.

Pure modules: forward passes and per-batch losses. Training, seeding and devices are in
:mod:`scatlas.models.scdmac`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

from scatlas.nn.count_likelihood import CountHeads, ZINBLoss


def _mlp(sizes: Sequence[int], activation: type[nn.Module], norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers.append(nn.Linear(n_in, n_out))
        if norm:
            layers.append(nn.LayerNorm(n_out))
        layers.append(activation())
    return nn.Sequential(*layers)


class ZINBAutoencoder(nn.Module):
    """DCA-style denoising autoencoder: z-scored log1p expression in, ZINB parameters of the raw counts out.

    Encoder ``n_genes → hidden... → latent`` (ReLU, last layer linear), mirrored decoder, then
    :class:`~scatlas.nn.CountHeads`. Gaussian noise of sd ``input_noise`` is added to the input while
    training (scDeepCluster's denoising; placement on the input only, as its PyTorch code).

    ``forward(x, size_factors)``: ``x`` cells × genes, z-scored log1p of counts per 10^4;
    ``size_factors`` (cells,) = library size / 10^4, so that the mean head is on the per-10^4 scale.
    Returns ``(mean_normalized, mu, theta, pi)``.
    """

    def __init__(
        self,
        n_genes: int,
        hidden: Sequence[int] = (256, 64),
        latent: int = 32,
        input_noise: float = 1.0,
        ridge: float = 0.0,
    ):
        super().__init__()
        self.encoder = nn.Sequential(_mlp([n_genes, *hidden], nn.ReLU, norm=False), nn.Linear(hidden[-1], latent))
        self.decoder = _mlp([latent, *reversed(hidden)], nn.ReLU, norm=False)
        self.heads = CountHeads(hidden[0], n_genes, zero_inflated=True)
        self.input_noise = input_noise
        self.loss = ZINBLoss(ridge=ridge)

    def forward(self, x: torch.Tensor, size_factors: torch.Tensor):
        if self.training and self.input_noise > 0:
            x = x + self.input_noise * torch.randn_like(x)
        return self.heads(self.decoder(self.encoder(x)), size_factors)

    def nll(self, x: torch.Tensor, counts: torch.Tensor, size_factors: torch.Tensor) -> torch.Tensor:
        """Mean ZINB negative log-likelihood of ``counts`` (raw, cells × genes) given input ``x``."""
        _, mu, theta, pi = self(x, size_factors)
        return self.loss(counts, mu.float(), theta.float(), pi.float())


class MaskingAutoencoder(nn.Module):
    """Masking autoencoder with mask predictor and weighted reconstruction (scDMAC Eq. 11–15).

    Encoder ``n_genes → hidden... → latent`` (LayerNorm + Mish, last layer linear: the embedding Z);
    mask predictor = one linear layer ``latent → n_genes`` (logits of M'); decoder = one linear layer
    on ``[Z, M']`` (scMAE's layout). ``mask_predictor=False`` (ablation scDMAC-P) removes the predictor:
    the decoder then sees Z alone and the loss is the reconstruction term alone.
    """

    def __init__(self, n_genes: int, hidden: Sequence[int] = (256, 128), latent: int = 32, mask_predictor: bool = True):
        super().__init__()
        self.encoder = nn.Sequential(_mlp([n_genes, *hidden], nn.Mish, norm=True), nn.Linear(hidden[-1], latent))
        self.mask_head = nn.Linear(latent, n_genes) if mask_predictor else None
        self.decoder = nn.Linear(latent + (n_genes if mask_predictor else 0), n_genes)

    def forward(self, x: torch.Tensor):
        """``x`` cells × genes (perturbed, z-scored log1p) → ``(z, mask_logits or None, reconstruction)``."""
        z = self.encoder(x)
        if self.mask_head is None:
            return z, None, self.decoder(z)
        mask_logits = self.mask_head(z)
        if z.shape[0] <= z.shape[1] + 1:  # fewer cells than the folded map's columns: decode directly
            return z, mask_logits, self.decoder(torch.cat([z, mask_logits], dim=1))
        return z, mask_logits, self._decode_folded(z)

    def _decode_folded(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder on ``[Z, M']``, with M' = H Z + h folded into its weight W = [W_z, W_m]:
        W [Z; H Z + h] + b = (W_z + W_m H) Z + (W_m h + b), computed as W · [[I, 0], [H, h]].

        The same function of the same parameters (gradients included), but its large product is
        genes × (latent + genes) × (latent + 1) per batch instead of cells × (latent + genes) × genes:
        at 256 cells, 2000 genes and a 128-d Z a CPU step takes 0.7 of the time.
        """
        latent = z.shape[1]
        head = torch.cat([self.mask_head.weight, self.mask_head.bias[:, None]], dim=1)
        identity = torch.eye(latent, latent + 1, dtype=head.dtype, device=head.device)
        folded = self.decoder.weight @ torch.cat([identity, head], dim=0)  # genes × (latent + 1)
        return torch.addmm(self.decoder.bias + folded[:, latent], z, folded[:, :latent].T)

    def loss(
        self,
        x_masked: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        masked_weight: float | None,
        mask_loss_weight: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_mae = (1 − γ_m) · L_rec + γ_m · L_mask, and the embedding of ``x_masked``.

        ``target`` = the unperturbed input, ``mask`` (0/1) = entries replaced by shuffled values.
        L_rec = mean of W ⊙ (x̂ − target)², W = λ on masked and 1 − λ on other entries;
        ``masked_weight=None`` (ablation scDMAC-W) = plain MSE. Without a mask predictor L_mae = L_rec.
        """
        z, mask_logits, reconstruction = self(x_masked)
        squared_error = (reconstruction.float() - target).square()
        if masked_weight is None:
            reconstruction_loss = squared_error.mean()
        else:
            weights = mask * masked_weight + (1.0 - mask) * (1.0 - masked_weight)
            reconstruction_loss = (weights * squared_error).mean()
        if mask_logits is None:
            return reconstruction_loss, z
        mask_loss = F.binary_cross_entropy_with_logits(mask_logits.float(), mask)
        return (1.0 - mask_loss_weight) * reconstruction_loss + mask_loss_weight * mask_loss, z
