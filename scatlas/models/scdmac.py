"""scDMAC (Xu et al., Front. Bioinform. 2026): fit / predict / save / load around the modules of
:mod:`scatlas.nn.scdmac`.

Training runs in three stages on the highly variable genes' raw counts:

1. ZINB denoising autoencoder on the counts (input: z-scored log1p per 10^4, target: counts with
   size factors); denoised matrix X_z = log1p of its mean head (per-10^4 scale), z-scored per gene.
2. Masking autoencoder on X_z: training-time augmentations (genes zeroed, Gaussian noise, swaps with
   cosine-kNN neighbours), then gene-wise shuffle (one permutation of the batch's cells) + Bernoulli
   mask; loss (1 − γ_m) L_rec + γ_m L_mask (optionally ending on the moving average of its weights).
3. Clustering: centres from K-means on the embedding Z (the restart with the best silhouette), then
   the total loss α L_ZINB + β L_mae + φ L_wkm + θ L_KL, with the centres (Eq. 17) and the DEC target
   recomputed on all cells once per epoch. Labels = argmax of the Student-t assignment.

``scatlas cluster`` runs ``ensemble`` such fits with different seeds and combines their partitions by
consensus (:func:`fit_ensemble`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.neighbors import NearestNeighbors
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scatlas.models.base import ClusteringModel, FittedClustering, Params, combine_members
from scatlas.models.training import adam, batch_starts, deterministic
from scatlas.nn.clustering import (
    dec_target,
    inflate,
    kl_divergence,
    soft_kmeans_loss,
    squared_distances,
    student_t_assignment,
    weighted_centres,
)
from scatlas.nn.scdmac import MaskingAutoencoder, ZINBAutoencoder
from scatlas.partition import estimate_n_clusters
from scatlas.preprocess.normalize import TARGET_SUM, highly_variable, log_normalize

log = logging.getLogger(__name__)

SILHOUETTE_CELLS = 5000  # cells on which the silhouette of a K-means restart is computed


@dataclass
class ScdmacParams(Params):
    """Hyper-parameters: the paper's optima where it gives them (its §3.3: λ, γ_m; the masking ratio read as
    the share of entries masked, see ``mask_ratio``), else scMAE's (genes, embedding size, epochs).

    Two stages of the paper's model are off by default: the ZINB denoising (``denoise``) and the
    training-time augmentations (``gene_zero_rate``, ``noise_variance``, ``neighbour_swap_rate``; the
    paper's values are 0.1, 0.6 and 0.2). Their Gaussian noise makes every swapped entry differ, as
    ``mask_target`` "swapped" does, which breaks the embedding of sparse sets. Setting them gives the
    paper's full model. What each default was chosen against: docs/models/scdmac.md.
    """

    model_name = "scDMAC"

    # highly variable genes modelled (scatlas.preprocess.normalize.highly_variable: scanpy's seurat flavour
    # among the genes seen in at least 3 cells)
    n_top_genes: int = 1000
    # stage 1: ZINB denoising autoencoder (DCA / scDeepCluster layout)
    denoise: bool = False  # True = the paper's denoising stage (off = its ablation scDMAC-Z)
    zinb_hidden: list[int] = field(default_factory=lambda: [256, 64])
    zinb_latent: int = 32
    zinb_input_noise: float = 1.0  # sd of Gaussian noise on the z-scored input while denoising
    zinb_ridge: float = 0.0  # ridge on the drop-out probability (DCA default 0)
    zinb_epochs: int = 20
    # stage 2: masking autoencoder; the decoder sees [Z, M'] only
    mae_hidden: list[int] = field(default_factory=lambda: [256, 128])
    latent: int = 128  # embedding size (scMAE 128; the paper 10–32)
    # Masking ratio = the share of entries the perturbation changes (the paper's optimum 0.2–0.3). An entry
    # swapped with an equal value (two zeros) does not change, so the Bernoulli probability of a swap is
    # set from the data: mask_ratio / P(two cells differ), averaged over genes, at most max_mask_probability
    # (sets with over 90 % zeros get the maximum)
    mask_ratio: float = 0.3
    max_mask_probability: float = 0.55
    # how X' is shuffled: "cells" = one random permutation of the batch's cells shared by every gene
    # (scMAE's apply_noise: the masked entries of cell i all come from one partner cell, so the mask
    # predictor learns which genes differ between two cells); "genes" = each gene permuted on its own
    shuffle: str = "cells"
    # M, what the mask predictor is trained to find and λ weighs: "swapped" = every swapped entry (the
    # paper's M ~ Bernoulli), also two equal values swapped for each other; "changed" = only the entries
    # whose value the swap changed (scMAE's rule); "auto" = "swapped" on the genes where two cells differ
    # more often than not (a swap is visible there), "changed" on the others. "swapped" takes away the
    # shortcut "a zero was not masked", so the embedding must place each value in its cell's context; on
    # sparse genes most swaps exchange two zeros, which no predictor can tell apart. With `noise_variance`
    # every swapped entry changes, so the paper's Gaussian noise acts as "swapped"
    mask_target: str = "auto"
    masked_weight: float = 0.7  # λ on masked entries (1 − λ elsewhere); optimum ≈ 0.7
    weighted_reconstruction: bool = True  # False = ablation scDMAC-W: plain MSE
    mask_predictor: bool = True  # False = ablation scDMAC-P: no mask predictor, no BCE term
    mask_loss_weight: float = 0.65  # γ_m; optimum ≈ 0.65
    gene_zero_rate: float = 0.0  # augmentation: share of entries set to a zero count (paper 0.1)
    noise_variance: float = 0.0  # augmentation: Gaussian noise variance, z-scored scale (paper 0.6)
    neighbour_swap_rate: float = 0.0  # augmentation: share of entries taken from a kNN neighbour (paper 0.2)
    n_neighbours: int = 15  # cosine kNN graph for the swaps
    mae_epochs: int = 100
    # > 0: the masking stage ends on an exponential moving average of its weights with this decay (Polyak
    # averaging; 0.995 = a horizon of about 200 optimizer steps, at most a fifth of the stage's steps:
    # ema_decay_for) instead of the last step's weights, which depend on the last few batches and masks
    ema_decay: float = 0.995
    # stage 3: clustering
    inflation: float = 2.0  # r of the weighted soft K-means (1 = no sharpening)
    student_t_dof: float = 1.0
    alpha: float = 1.0  # weight of L_ZINB
    beta: float = 1.0  # weight of L_mae
    # φ and θ: the clustering terms are squared distances in the embedding (tens to hundreds); much larger
    # weights let them outweigh L_mae and collapse the embedding
    phi: float = 0.01  # weight of the weighted soft K-means loss
    theta: float = 0.01  # weight of KL(P || Q)
    cluster_epochs: int = 20  # joint refinement with the total loss (0: K-means centres on the embedding only)
    kmeans_n_init: int = 20  # K-means restarts for the initial centres
    # which restart gives the centres: "silhouette" = the partition with the highest silhouette (on up to
    # 5000 cells), "inertia" = the lowest within-cluster sum of squares (scikit-learn's choice), which
    # often splits a large, spread-out type and merges two small ones; the silhouette penalises both
    centre_selection: str = "silhouette"
    # fits (members) that scatlas cluster combines: their partitions by consensus (the co-association's average
    # linkage or a member's partition, whichever agrees best with all: scatlas.partition), their embeddings
    # side by side. Most of the seed-to-seed spread comes from training, not from K-means. ensemble 1 with
    # ema_decay 0 is the single plain fit (a third of the time)
    ensemble: int = 3
    # optimisation
    min_steps: int = 300  # each training stage takes at least this many optimizer steps (small sets: more epochs)
    batch_size: int = 256  # cells
    learning_rate: float = 1e-3  # Adam, stages 1 and 2
    cluster_learning_rate: float = 1e-4  # Adam, the joint refinement

    ranges: ClassVar[dict] = {
        **{name: (0, 1) for name in ("mask_ratio", "max_mask_probability", "masked_weight", "gene_zero_rate")},
        **{name: (0, 1) for name in ("neighbour_swap_rate", "mask_loss_weight")},
        **{name: (1, None) for name in ("n_top_genes", "zinb_latent", "latent", "batch_size", "n_neighbours")},
        **{name: (0, None) for name in ("zinb_epochs", "mae_epochs", "cluster_epochs", "min_steps", "noise_variance")},
        **{name: (0, None) for name in ("learning_rate", "cluster_learning_rate", "zinb_input_noise", "zinb_ridge")},
        "inflation": (1, None),
        "kmeans_n_init": (1, None),
    }

    def __post_init__(self):
        super().__post_init__()
        if self.ensemble < 1:
            raise ValueError(f"scDMAC ensemble must be at least 1, not {self.ensemble}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"scDMAC ema_decay must be in [0, 1), not {self.ema_decay}")
        for name, allowed in (
            ("shuffle", ("cells", "genes")),
            ("mask_target", ("auto", "swapped", "changed")),
            ("centre_selection", ("silhouette", "inertia")),
        ):
            self._check_choice(name, allowed)


def differ_probability(x: np.ndarray) -> np.ndarray:
    """Per gene (column of ``x``, cells × genes), the probability that two cells drawn at random with
    replacement have different values: 1 − Σ_v f_v², f_v = the share of cells with value v."""
    return np.array([1.0 - np.square(np.unique(column, return_counts=True)[1] / len(column)).sum() for column in x.T])


def ema_decay_for(decay: float, steps: int) -> float:
    """``decay``, or less when its horizon 1 / (1 − decay) is over a fifth of the ``steps`` it averages:
    the first step's weights, near the random start, keep a share decay^steps of the average (0.995 over
    300 steps, a small set's stage: 22 %); at most e^−5 < 1 % with the cap (0 under 6 steps: no average)."""
    return max(0.0, min(decay, 1.0 - 5.0 / steps))


def mask_probability(differ: np.ndarray, ratio: float, maximum: float) -> float:
    """Bernoulli probability under which a share ``ratio`` of the entries is expected to change when
    swapped with another cell's, given each gene's ``differ_probability``; capped at ``maximum``."""
    mean = float(differ.mean())
    return min(maximum, ratio / mean) if mean > 0 else maximum


class Scdmac(ClusteringModel):
    """scDMAC clustering of raw counts: one fit (``params.ensemble`` is :func:`fit_ensemble`'s).

    Constructed as :class:`~scatlas.models.base.ClusteringModel` with :class:`ScdmacParams`; without
    ``n_clusters`` k is estimated after the masking stage (Leiden at resolution 1 on the embedding,
    :func:`scatlas.partition.estimate_n_clusters`). The seed fixes weights, batches, masks,
    augmentations and K-means.
    """

    params_class = ScdmacParams
    method = "scdmac"
    networks = ("denoiser", "mae")

    def _build_networks(self):
        p, n_genes = self.params, len(self.genes_)
        self.denoiser = ZINBAutoencoder(n_genes, p.zinb_hidden, p.zinb_latent, p.zinb_input_noise, p.zinb_ridge)
        self.mae = MaskingAutoencoder(n_genes, p.mae_hidden, p.latent, p.mask_predictor)

    # ---------------------------------------------------------------- helpers
    def _inputs(self, counts: sp.spmatrix):
        """Network inputs from raw counts of all the fitted input's genes: z-scored log1p per 10^4 of the
        modelled genes, their raw counts, size factors (library size over *all* genes / 10^4), and the
        (mean, sd) per gene of the log data that z-scored it (the denoised matrix is put on that scale)."""
        counts = sp.csr_matrix(counts, dtype=np.float32)
        if counts.shape[1] != self.n_input_genes_:
            raise ValueError(f"counts have {counts.shape[1]} genes; the model was fitted on {self.n_input_genes_}")
        totals = np.asarray(counts.sum(axis=1)).ravel()
        # per 10^4 (the paper's normalisation), not per median library size (scMAE's normalize_per_cell), which
        # on a set of few genes with large counts is log1p of almost raw counts (docs/models/scdmac.md)
        logged = log_normalize(counts)[:, self.genes_].toarray()
        counts = counts[:, self.genes_].toarray()
        mean, sd = logged.mean(axis=0), logged.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0).astype(np.float32)  # constant genes become 0
        # not clipped at |z| ≤ 10 (Seurat's and scanpy's max_value): it helped some sets and cost others
        # (docs/models/scdmac.md)
        device = self.device
        scale = (torch.from_numpy(mean).to(device), torch.from_numpy(sd).to(device))
        return (
            torch.from_numpy((logged - mean) / sd).to(device),
            torch.from_numpy(counts).to(device),
            torch.from_numpy((totals / TARGET_SUM).astype(np.float32)).to(device),
            scale,
        )

    @torch.no_grad()
    def _denoised(self, x: torch.Tensor, size_factors: torch.Tensor, scale) -> torch.Tensor:
        """X_z: log1p of the denoiser's mean head (per-10^4 scale), centred and scaled per gene with the
        observed log data's mean and sd (the input's scale); cells × genes."""
        self.denoiser.eval()
        log_mean = torch.log1p(self._in_chunks(lambda rows, factors: self.denoiser(rows, factors)[0], x, size_factors))
        mean, sd = scale
        return (log_mean - mean) / sd

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        self.mae.eval()
        return self._in_chunks(self.mae.encoder, x)

    def _perturb(
        self, x: torch.Tensor, neighbours: torch.Tensor | None, batch: torch.Tensor, generator: torch.Generator
    ):
        """Augment, then shuffle each gene across the batch's cells and mask: returns (X_M, M)."""
        p = self.params
        n, g = x.shape
        augmented = x
        if p.neighbour_swap_rate > 0:
            pick = torch.randint(neighbours.shape[1], (n,), generator=generator).to(self.device)
            neighbour_rows = self._x_mae[neighbours[batch, pick]]
            swap = torch.rand(n, g, generator=generator).to(self.device) < p.neighbour_swap_rate
            augmented = torch.where(swap, neighbour_rows, augmented)
        if p.noise_variance > 0:
            noise = torch.randn(n, g, generator=generator).to(self.device)
            augmented = augmented + noise * p.noise_variance**0.5
        if p.gene_zero_rate > 0:
            # a zeroed entry takes the value of a zero count, on the z-scored scale -mean / sd, not 0 (the
            # gene's mean: on sparse data that turned most zeroed entries into expression)
            keep = torch.rand(n, g, generator=generator).to(self.device) >= p.gene_zero_rate
            augmented = torch.where(keep, augmented, self._zero_level)
        if p.shuffle == "cells":
            shuffled = augmented[torch.randperm(n, generator=generator).to(self.device)]
        else:  # each gene's column permuted independently across the batch's cells
            order = torch.argsort(torch.rand(n, g, generator=generator), dim=0).to(self.device)
            shuffled = torch.gather(augmented, 0, order)
        swap = (torch.rand(n, g, generator=generator) < self.mask_probability_).to(self.device)
        x_masked = torch.where(swap, shuffled, augmented)
        changed = x_masked != augmented  # an entry that drew an equal value (two zeros) did not change
        if p.mask_target == "swapped":
            return x_masked, swap.float()
        if p.mask_target == "auto":
            return x_masked, torch.where(self._swap_visible, swap, changed).float()
        return x_masked, changed.float()

    def _mae_loss(self, target, neighbours, batch, generator):
        p = self.params
        x_masked, mask = self._perturb(target, neighbours, batch, generator)
        with self._autocast():
            return self.mae.loss(
                x_masked, target, mask, p.masked_weight if p.weighted_reconstruction else None, p.mask_loss_weight
            )

    # -------------------------------------------------------------------- fit
    def fit(self, counts: sp.spmatrix, gene_names=None) -> Scdmac:
        """Train on ``counts``: cells × genes raw counts of every gene (no all-zero cells).

        The ``n_top_genes`` highly variable genes are modelled; library sizes count all genes.
        """
        p = self.params
        counts = sp.csr_matrix(counts, dtype=np.float32)
        self.n_input_genes_ = counts.shape[1]
        self.genes_ = highly_variable(counts, p.n_top_genes)
        names = np.asarray(gene_names) if gene_names is not None else np.arange(counts.shape[1]).astype(str)
        self.gene_names = names[self.genes_]
        n_cells, n_genes = counts.shape[0], len(self.genes_)
        started = time.perf_counter()
        with deterministic(self.seed):
            generator = torch.Generator().manual_seed(self.seed)
            x, y, size_factors, scale = self._inputs(counts)
            self._zero_level = -scale[0] / scale[1]  # log1p(0) = 0 on the z-scored scale
            self._build_networks()
            self.denoiser.to(self.device)
            self.mae.to(self.device)
            if p.denoise:
                self._fit_denoiser(x, y, size_factors, generator)
                self._x_mae = self._denoised(x, size_factors, scale)
            else:
                self._x_mae = x
            self._set_masking(self._x_mae.cpu().numpy())
            # the cosine kNN graph only for the neighbour swaps (brute force: quadratic in the cells)
            neighbours = self._neighbours(self._x_mae) if p.neighbour_swap_rate > 0 else None
            self._fit_mae(neighbours, generator)
            self._fit_clusters(x, y, size_factors, scale, neighbours, generator)
            self.embedding_ = self._embed(self._x_mae).cpu().numpy()
            self.labels_ = self._assign(torch.from_numpy(self.embedding_).to(self.device)).cpu().numpy()
        self.fit_seconds_ = time.perf_counter() - started
        log.info(
            "scDMAC fit: %d cells × %d genes, k = %d, %.1f s on %s",
            n_cells,
            n_genes,
            self.n_clusters_,
            self.fit_seconds_,
            self.device,
        )
        del self._x_mae, self._zero_level, self._swap_visible
        return self

    def _set_masking(self, x: np.ndarray):
        """From the masking autoencoder's input (cells × genes): the Bernoulli probability of a swap and
        the genes on which a swap is visible more often than not (the "swapped" targets of ``mask_target``
        "auto")."""
        p = self.params
        differ = differ_probability(x)
        self.mask_probability_ = mask_probability(differ, p.mask_ratio, p.max_mask_probability)
        self._swap_visible = torch.from_numpy(differ > 0.5).to(self.device)
        log.info(
            "mask probability %.3f for a changed share of %.2f; swaps visible on %d of %d genes",
            self.mask_probability_,
            p.mask_ratio,
            int(self._swap_visible.sum()),
            len(differ),
        )

    def _neighbours(self, x: torch.Tensor) -> torch.Tensor:
        k = min(self.params.n_neighbours, x.shape[0] - 1)
        if k < 1:
            return torch.arange(x.shape[0], device=self.device).reshape(-1, 1)
        index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x.cpu().numpy())
        found = index.kneighbors(return_distance=False)  # excludes each cell itself
        return torch.from_numpy(found[:, :k]).to(self.device)

    def _fit_denoiser(self, x, y, size_factors, generator):
        p = self.params
        optimizer = adam(self.denoiser.parameters(), lr=p.learning_rate)
        epochs = self._epochs(p.zinb_epochs, x.shape[0])
        for epoch in range(epochs):
            self.denoiser.train()
            total, batches = 0.0, 0
            for batch in self._batches(x.shape[0], generator):
                with self._autocast():
                    loss = self.denoiser.nll(x[batch], y[batch], size_factors[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, batches = total + loss.item(), batches + 1
            self._progress("denoise", epoch, epochs, zinb=total / batches)

    def _fit_mae(self, neighbours, generator):
        p = self.params
        optimizer = adam(self.mae.parameters(), lr=p.learning_rate)
        epochs = self._epochs(p.mae_epochs, self._x_mae.shape[0])
        # ema_decay > 0: the stage ends on the moving average of the weights (Polyak averaging)
        decay = ema_decay_for(p.ema_decay, epochs * len(batch_starts(self._x_mae.shape[0], p.batch_size)))
        ema = AveragedModel(self.mae, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay > 0 else None
        for epoch in range(epochs):
            self.mae.train()
            total, batches = 0.0, 0
            for batch in self._batches(self._x_mae.shape[0], generator):
                loss, _ = self._mae_loss(self._x_mae[batch], neighbours, batch, generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update_parameters(self.mae)
                total, batches = total + loss.item(), batches + 1
            self._progress("mask", epoch, epochs, mae=total / batches)
        if ema is not None:
            self.mae.load_state_dict(ema.module.state_dict())

    def _fit_clusters(self, x, y, size_factors, scale, neighbours, generator):
        p = self.params
        z = self._embed(self._x_mae).cpu().numpy()
        n_clusters = self.n_clusters if self.n_clusters is not None else estimate_n_clusters(z, self.seed)
        self.centres = torch.from_numpy(self._initial_centres(z, n_clusters)).to(self.device)
        if p.cluster_epochs == 0:
            return
        parameters = list(self.mae.parameters())
        if p.denoise and p.alpha > 0:
            parameters += list(self.denoiser.parameters())
        optimizer = adam(parameters, lr=p.cluster_learning_rate)
        for epoch in range(p.cluster_epochs):
            if epoch > 0 and p.denoise and p.alpha > 0:  # the denoiser keeps learning: refresh its output
                self._x_mae = self._denoised(x, size_factors, scale)
            # Eq. 17 centres and the DEC target from all cells, fixed for the epoch
            z = self._embed(self._x_mae)
            if epoch > 0:
                self.centres = weighted_centres(
                    z, inflate(torch.softmax(-squared_distances(z, self.centres), 1), p.inflation)
                )
            target = dec_target(student_t_assignment(z, self.centres, p.student_t_dof))
            self.mae.train()
            sums = dict.fromkeys(("zinb", "mae", "wkm", "kl"), 0.0)
            batches = 0
            for batch in self._batches(x.shape[0], generator):
                losses = {"mae": self._mae_loss(self._x_mae[batch], neighbours, batch, generator)[0]}
                if p.denoise and p.alpha > 0:
                    self.denoiser.train()
                    with self._autocast():
                        losses["zinb"] = self.denoiser.nll(x[batch], y[batch], size_factors[batch])
                with self._autocast():
                    z_batch = self.mae.encoder(self._x_mae[batch]).float()
                losses["wkm"] = soft_kmeans_loss(z_batch, self.centres, p.inflation)
                losses["kl"] = kl_divergence(
                    target[batch], student_t_assignment(z_batch, self.centres, p.student_t_dof)
                )
                weights = {"zinb": p.alpha, "mae": p.beta, "wkm": p.phi, "kl": p.theta}
                loss = sum(weights[name] * value for name, value in losses.items())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                for name, value in losses.items():
                    sums[name] += value.item()
                batches += 1
            self._progress("cluster", epoch, p.cluster_epochs, **{k: v / batches for k, v in sums.items()})

    def _initial_centres(self, z: np.ndarray, k: int) -> np.ndarray:
        """Centres (k × latent) of the best of ``kmeans_n_init`` K-means runs on the embedding ``z``."""
        p = self.params
        if p.centre_selection == "inertia":
            kmeans = KMeans(k, n_init=p.kmeans_n_init, random_state=self.seed).fit(z)
            return kmeans.cluster_centers_.astype(np.float32)
        seeds = np.random.default_rng(self.seed).integers(2**31, size=p.kmeans_n_init)
        # the silhouette on one random sample of up to SILHOUETTE_CELLS cells (scikit-learn's own sampling),
        # its distances computed once for every restart
        sample = np.random.RandomState(self.seed).permutation(len(z))[:SILHOUETTE_CELLS]
        distances = pairwise_distances(z[sample])
        best, best_score = None, -np.inf
        for seed in seeds:
            kmeans = KMeans(k, n_init=1, random_state=int(seed)).fit(z)
            labels = kmeans.labels_[sample]
            if not 2 <= len(np.unique(labels)) < len(sample):  # the silhouette's domain
                score = -1.0
            else:
                score = silhouette_score(distances, labels, metric="precomputed")
            if score > best_score:
                best, best_score = kmeans, score
        return best.cluster_centers_.astype(np.float32)

    def _assign(self, z: torch.Tensor) -> torch.Tensor:
        return student_t_assignment(z, self.centres, self.params.student_t_dof).argmax(dim=1)

    # --------------------------------------------------------------- predict
    @torch.no_grad()
    def transform(self, counts: sp.spmatrix) -> np.ndarray:
        """Embedding Z (cells × latent) of new cells' raw counts over the fitted input's genes (same order)."""
        x, _, size_factors, scale = self._inputs(counts)
        x_mae = self._denoised(x, size_factors, scale) if self.params.denoise else x
        return self._embed(x_mae).cpu().numpy()


def member_seeds(seed: int, members: int) -> list[int]:
    """Seeds of an ensemble's members: ``seed`` itself first (one member is the plain fit), then seeds
    drawn from numpy's ``SeedSequence(seed)``."""
    return [seed, *(int(value) for value in np.random.SeedSequence(seed).generate_state(members - 1))]


def fit_ensemble(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: ScdmacParams | None = None,
    seed: int = 0,
    device: str = "auto",
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray, list[Scdmac]]:
    """scDMAC as ``scatlas cluster`` runs it: ``params.ensemble`` fits seeded by :func:`member_seeds` →
    (labels, embedding, fitted members).

    Labels: the consensus of the members' partitions (:func:`scatlas.partition.ensemble_partition`)
    at the first member's number of clusters (its estimate when ``n_clusters`` is None; the others are
    fitted with it). Embedding: the members' embeddings side by side, each divided by its overall sd so
    that every member weighs the same. One member: its own labels and embedding.
    """
    params = params or ScdmacParams()
    members: list[Scdmac] = []
    for member_seed in member_seeds(seed, params.ensemble):
        k = members[0].n_clusters_ if members else n_clusters
        members.append(Scdmac(k, params, member_seed, device).fit(counts, gene_names))
        log.info("scDMAC ensemble: member %d/%d fitted (seed %d)", len(members), params.ensemble, member_seed)
    labels, embedding = combine_members(
        [member.labels_ for member in members], [member.embedding_ for member in members], members[0].n_clusters_
    )
    return labels, embedding, members


def fit_clusters(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: ScdmacParams | None = None,
    seed: int = 0,
    device: str = "auto",
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray]:
    """scDMAC as ``scatlas cluster`` runs it on raw counts (cells × genes): :func:`fit_ensemble`'s
    (labels, embedding)."""
    labels, embedding, _ = fit_ensemble(counts, n_clusters, params, seed, device, gene_names)
    return labels, embedding


def fit_model(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: ScdmacParams | None = None,
    seed: int = 0,
    device: str = "auto",
    gene_names=None,
) -> FittedClustering:
    """:func:`fit_clusters` keeping the fitted members (``scatlas cluster --save-model``)."""
    labels, embedding, members = fit_ensemble(counts, n_clusters, params, seed, device, gene_names)
    return FittedClustering("scdmac", members, labels, embedding)
