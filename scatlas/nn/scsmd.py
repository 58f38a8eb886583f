"""scSMD's networks (Cui et al., BMC Bioinformatics 2025, Methods; code xiaoxuc/scSMD): a convolutional NB
autoencoder with a multi-dilated attention gate, and CellNet.

Each cell's expression of 784 highly variable genes is a 28 × 28 one-channel image. Pure modules:
training, seeding and devices are in :mod:`scatlas.models.scsmd`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from scatlas.nn.count_likelihood import dispersion_activation, mean_activation

IMAGE_SIDE = 28  # the encoder's strides take 28 → 14 → 7 → 3
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE


def _conv_bn(n_in: int, n_out: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    """Convolution with 'same' padding (stride 1) and batch normalisation."""
    return nn.Sequential(
        nn.Conv2d(n_in, n_out, kernel, padding=dilation * (kernel // 2), dilation=dilation), nn.BatchNorm2d(n_out)
    )


class MultiDilatedGate(nn.Module):
    """Multi-dilated attention gate (paper Eq. 11–13): parallel 3 × 3 convolutions at the given dilation
    rates, concatenated and ReLU'd; the selection module (1 × 1 convolution + sigmoid) gives the gate g;
    output x + x · g."""

    def __init__(self, channels: int, dilations: Sequence[int] = (4, 6, 8, 10)):
        super().__init__()
        self.branches = nn.ModuleList(_conv_bn(channels, channels, 3, d) for d in dilations)
        self.select = _conv_bn(channels * len(dilations), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(torch.cat([branch(x) for branch in self.branches], dim=1))
        return x + x * torch.sigmoid(self.select(features))


class SqueezeAttention(nn.Module):
    """Squeeze attention block after the first convolution: features at full and at half resolution;
    out = y · x_res + y, y = the half-resolution features upsampled (DeepScena/scSMD layout)."""

    def __init__(self, channels: int):
        super().__init__()

        def block():
            return nn.Sequential(_conv_bn(channels, channels, 3), nn.ReLU(), _conv_bn(channels, channels, 3), nn.ReLU())

        self.full_resolution, self.half_resolution = block(), block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.full_resolution(x)
        half = self.half_resolution(F.avg_pool2d(x, 2))
        y = F.interpolate(half, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y * residual + y


class GatedBottleneck(nn.Module):
    """Residual bottleneck: 1 × 1 convolution to ``width`` channels, the multi-dilated gate, 1 × 1 back,
    plus the identity."""

    def __init__(self, channels: int, width: int = 64, dilations: Sequence[int] = (4, 6, 8, 10)):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(channels, width, 1),
            nn.ReLU(),
            MultiDilatedGate(width, dilations),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            _conv_bn(width, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ConvNBAutoencoder(nn.Module):
    """scSMD autoencoder: cells × 784 log-expression → latent u → reconstruction and NB parameters.

    Encoder: 5 × 5 convolution (stride 2, 32 channels, 14 × 14), squeeze attention, gated bottleneck;
    5 × 5 stride 2 (64, 7 × 7), gated bottleneck; 3 × 3 stride 2 (128, 3 × 3), gated bottleneck; a linear
    layer → ``latent``. Decoder: linear → 128 × 3 × 3, three transposed convolutions back to 28 × 28 = the
    reconstruction x̂; NB heads on x̂: mean = exp (clamped, :func:`~scatlas.nn.mean_activation`) and
    dispersion (:func:`~scatlas.nn.dispersion_activation`) of linear layers (paper Eq. 4–5).

    ``forward(x)`` → ``(u, reconstruction, mean, dispersion)``; ``x`` and the outputs but u are cells × 784.
    """

    def __init__(self, latent: int = 10, dilations: Sequence[int] = (4, 6, 8, 10)):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2),
            SqueezeAttention(32),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            GatedBottleneck(32, dilations=dilations),
            nn.Conv2d(32, 64, 5, stride=2, padding=2),
            nn.ReLU(),
            GatedBottleneck(64, dilations=dilations),
            nn.Conv2d(64, 128, 3, stride=2),
            nn.ReLU(),
            GatedBottleneck(128, dilations=dilations),
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 128 * 3 * 3),
            nn.ReLU(),
            nn.Unflatten(1, (128, 3, 3)),
            nn.ConvTranspose2d(128, 64, 3, stride=2),
            nn.ReLU(),  # 7 × 7
            nn.ConvTranspose2d(64, 32, 5, stride=2, padding=1),
            nn.ReLU(),  # 15 × 15
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=2),
            nn.Flatten(),  # 28 × 28
        )
        self.mean = nn.Linear(N_PIXELS, N_PIXELS)
        self.dispersion = nn.Linear(N_PIXELS, N_PIXELS)
        for module in self.modules():  # the reference's initialisation
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE))

    def forward(self, x: torch.Tensor):
        u = self.encode(x)
        reconstruction = self.decoder(u)
        return (
            u,
            reconstruction,
            mean_activation(self.mean(reconstruction)),
            dispersion_activation(self.dispersion(reconstruction)),
        )


class CellNet(nn.Module):
    """latent → 128 → 128 → softmax over k clusters (linear + batch norm + ReLU hidden layers)."""

    def __init__(self, latent: int, n_clusters: int, hidden: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_clusters),
            nn.Softmax(dim=1),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.layers(u)
