"""scSMD (Cui et al., BMC Bioinformatics 2025): fit / predict / save / load around the modules of
:mod:`scatlas.nn.scsmd`.

Each cell = log1p per 10^4 of the 784 highly variable genes as a 28 × 28 image. Training, as in the paper:

1. Pretraining of the convolutional autoencoder on the reconstruction (MSE).
2. Module 1: K-means on the latent u gives centres; fuzzy memberships p_ik (fuzziness m = the paper's λ);
   the autoencoder is trained on L_u^(k) = L_r^(k) + α L_c^(k) + β L_NB^(k) (Eq. 7–10, each term weighted
   by p_ik^m; NB of the rounded log-expression, as the paper's x'); centres re-estimated from the
   memberships every ``centre_interval`` epochs.
3. CellNet (u → softmax over k), phase 1 on the memberships' pair similarity p pᵀ (Eq. 14, centres
   updated each epoch), phase 2 on its own q qᵀ (Eq. 15). Labels = argmax q; the embedding = u.
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

from scatlas.models.base import ClusteringModel, FittedClustering, Params
from scatlas.models.training import adam, deterministic
from scatlas.nn.clustering import fuzzy_memberships, pairwise_similarity_loss, squared_distances, weighted_centres
from scatlas.nn.count_likelihood import nb_nll
from scatlas.nn.scsmd import N_PIXELS, CellNet, ConvNBAutoencoder
from scatlas.partition import estimate_n_clusters
from scatlas.preprocess.normalize import highly_variable, log_normalize

log = logging.getLogger(__name__)


@dataclass
class ScsmdParams(Params):
    """Hyper-parameters: the paper's where it states them (dilation rates (4, 6, 8, 10), CellNet's 20 epochs,
    δ < 1), else its reference code's run script (xiaoxuc/scSMD runscSMD.py). Where and why it departs from
    them: docs/models/scsmd.md."""

    model_name = "scSMD"

    latent: int = 10  # size of u
    dilations: list[int] = field(default_factory=lambda: [4, 6, 8, 10])  # the paper's best; its code (2, 4, 6, 8)
    batch_size: int = 100
    # 1. pretraining (reconstruction only), Adam
    pretrain_epochs: int = 20
    learning_rate: float = 1e-3
    # pretraining takes at least this many optimizer steps (small sets: more epochs)
    min_steps: int = 200
    # 2. Module 1: fuzzy clustering
    kmeans_n_init: int = 20
    fuzziness: float = 1.5  # m (the paper's λ): memberships p_ik ∝ d_ik^(−1/(m−1)), losses weighted by p_ik^m
    alpha: float = 0.2  # weight of the centre loss L_c
    beta: float = 0.1  # weight of the NB loss L_NB
    # Module 1 shrinks the latent space (the centre loss pulls every u towards its centre), so it runs for
    # cluster_epochs whatever the set's size: long enough, it leaves CellNet one cluster
    cluster_epochs: int = 20
    # Adam on the batch mean of the losses. The reference's SGD (lr 1e-6, momentum 0.9) on their sums over
    # cells makes a step grow with the scale of u, which pretraining sets, and can turn the weights to NaN
    cluster_learning_rate: float = 1e-4
    centre_interval: int = 2  # epochs between re-estimates of the centres
    # the paper trains the autoencoder "K times", one step on each cluster's L_u^(k) per batch; False = one
    # step on their sum Σ_k L_u^(k), the same objective at 1/K of the cost
    per_cluster_steps: bool = False
    # 3. CellNet: phase 1 (similarity of the memberships), phase 2 (its own), Adam
    cellnet_epochs: int = 20
    finetune_epochs: int = 20
    cellnet_learning_rate: float = 1e-3
    similarity_threshold: float = 0.8  # δ: pairs at least this similar are pulled together, at most 1 − δ apart

    ranges: ClassVar[dict] = {
        **{name: (1, None) for name in ("latent", "batch_size", "kmeans_n_init", "centre_interval")},
        **{name: (0, None) for name in ("pretrain_epochs", "min_steps", "cluster_epochs", "cellnet_epochs")},
        **{name: (0, None) for name in ("finetune_epochs", "alpha", "beta", "learning_rate")},
        **{name: (0, None) for name in ("cluster_learning_rate", "cellnet_learning_rate")},
    }

    def __post_init__(self):
        super().__post_init__()
        if not 0.5 < self.similarity_threshold < 1:
            raise ValueError(f"scSMD similarity_threshold must be in (0.5, 1), not {self.similarity_threshold}")
        if self.fuzziness <= 1:
            raise ValueError(f"scSMD fuzziness must be above 1, not {self.fuzziness}")


class Scsmd(ClusteringModel):
    """scSMD clustering of raw counts.

    Constructed as :class:`~scatlas.models.base.ClusteringModel` with :class:`ScsmdParams`; without
    ``n_clusters`` k is estimated after pretraining (Leiden at resolution 1 on u). The seed fixes
    weights, batches and K-means.
    """

    params_class = ScsmdParams
    method = "scsmd"
    networks = ("autoencoder", "cellnet")

    def _build_networks(self):
        self.autoencoder = ConvNBAutoencoder(self.params.latent, self.params.dilations)
        self.cellnet = CellNet(self.params.latent, self.centres.shape[0])

    def _images(self, counts: sp.spmatrix) -> torch.Tensor:
        """log1p per 10^4 (library sizes over all genes) of the modelled genes, zero-padded to 784 columns."""
        counts = sp.csr_matrix(counts, dtype=np.float32)
        if counts.shape[1] != self.n_input_genes_:
            raise ValueError(f"counts have {counts.shape[1]} genes; the model was fitted on {self.n_input_genes_}")
        images = np.zeros((counts.shape[0], N_PIXELS), dtype=np.float32)
        images[:, : len(self.genes_)] = log_normalize(counts)[:, self.genes_].toarray()
        return torch.from_numpy(images).to(self.device)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        self.autoencoder.eval()
        return self._in_chunks(self.autoencoder.encode, x, size=2048)

    # -------------------------------------------------------------------- fit
    def fit(self, counts: sp.spmatrix, gene_names=None) -> Scsmd:
        """Train on ``counts``: cells × genes raw counts of every gene (no all-zero cells)."""
        p = self.params
        counts = sp.csr_matrix(counts, dtype=np.float32)
        self.n_input_genes_ = counts.shape[1]
        self.genes_ = highly_variable(counts, N_PIXELS)
        names = np.asarray(gene_names) if gene_names is not None else np.arange(counts.shape[1]).astype(str)
        self.gene_names = names[self.genes_]
        started = time.perf_counter()
        with deterministic(self.seed):
            generator = torch.Generator().manual_seed(self.seed)
            x = self._images(counts)
            self.autoencoder = ConvNBAutoencoder(p.latent, p.dilations).to(self.device)
            self._pretrain(x, generator)
            u = self._encode(x).cpu().numpy()
            k = self.n_clusters if self.n_clusters is not None else estimate_n_clusters(u, self.seed)
            kmeans = KMeans(k, n_init=p.kmeans_n_init, random_state=self.seed).fit(u)
            self.centres = torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)).to(self.device)
            self._fit_fuzzy(x, generator)
            u = self._encode(x)
            self.cellnet = CellNet(p.latent, k).to(self.device)
            self._fit_cellnet(u, generator)
            self.embedding_ = u.cpu().numpy()
            self.labels_ = self._assign(u).cpu().numpy()
        self.fit_seconds_ = time.perf_counter() - started
        log.info(
            "scSMD fit: %d cells × %d genes, k = %d, %.1f s on %s",
            counts.shape[0],
            len(self.genes_),
            k,
            self.fit_seconds_,
            self.device,
        )
        return self

    def _pretrain(self, x, generator):
        p = self.params
        optimizer = adam(self.autoencoder.parameters(), lr=p.learning_rate)
        epochs = self._epochs(p.pretrain_epochs, x.shape[0])
        for epoch in range(epochs):
            self.autoencoder.train()
            total, batches = 0.0, 0
            for batch in self._batches(x.shape[0], generator):
                with self._autocast():
                    reconstruction = self.autoencoder(x[batch])[1]
                loss = (reconstruction.float() - x[batch]).square().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, batches = total + loss.item(), batches + 1
            self._progress("pretrain", epoch, epochs, mse=total / batches)

    def cluster_losses(self, x: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Module 1's losses of a batch, per cluster (k values each): L_r^(k), L_c^(k), L_NB^(k) (Eq. 8–10),
        each a sum over cells of ``weights`` (cells × k, the memberships p_ik^m) times the cell's term."""
        with self._autocast():
            u, reconstruction, mean, dispersion = self.autoencoder(x)
        reconstruction_error = (reconstruction.float() - x).square().sum(dim=1)
        nb = nb_nll(torch.round(x), mean.float(), dispersion.float()).sum(dim=1)
        centre_distance = squared_distances(u.float(), self.centres)
        return {
            "rec": weights.T @ reconstruction_error,
            "centre": (weights * centre_distance).sum(dim=0),
            "nb": weights.T @ nb,
        }

    def _fit_fuzzy(self, x, generator):
        p = self.params
        k = self.centres.shape[0]
        optimizer = adam(self.autoencoder.parameters(), lr=p.cluster_learning_rate)
        for epoch in range(p.cluster_epochs):
            if epoch > 0 and epoch % p.centre_interval == 0:
                self.centres = self._updated_centres(self._encode(x))
            sums = dict.fromkeys(("rec", "centre", "nb"), 0.0)
            for batch in self._batches(x.shape[0], generator):
                with torch.no_grad():
                    weights = fuzzy_memberships(self._encode(x[batch]), self.centres, p.fuzziness).pow(p.fuzziness)
                self.autoencoder.train()
                for cluster in range(k) if p.per_cluster_steps else [None]:
                    losses = self.cluster_losses(x[batch], weights)
                    if cluster is not None:
                        losses = {name: value[cluster] for name, value in losses.items()}
                    loss = (losses["rec"] + p.alpha * losses["centre"] + p.beta * losses["nb"]).sum() / len(batch)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    for name, value in losses.items():
                        sums[name] += value.sum().item()
            if not np.isfinite(list(sums.values())).all():
                raise FloatingPointError(
                    f"scSMD Module 1 diverged in epoch {epoch + 1} (losses {sums}); lower cluster_learning_rate"
                )
            means = {name: value / x.shape[0] for name, value in sums.items()}
            self._progress("fuzzy", epoch, p.cluster_epochs, **means)

    def _updated_centres(self, u: torch.Tensor) -> torch.Tensor:
        """c_k = Σ_i p_ik^m u_i / Σ_i p_ik^m over all cells."""
        return weighted_centres(u, fuzzy_memberships(u, self.centres, self.params.fuzziness).pow(self.params.fuzziness))

    def _fit_cellnet(self, u, generator):
        p = self.params
        optimizer = adam(self.cellnet.parameters(), lr=p.cellnet_learning_rate)
        phases = [("cellnet", p.cellnet_epochs), ("finetune", p.finetune_epochs)]
        for phase, epochs in phases:
            for epoch in range(epochs):
                self.cellnet.train()
                total, batches = 0.0, 0
                for batch in self._batches(u.shape[0], generator):
                    q = self.cellnet(u[batch])
                    if phase == "cellnet":
                        memberships = fuzzy_memberships(u[batch], self.centres, p.fuzziness)
                        similarity = memberships @ memberships.T
                    else:
                        similarity = (q @ q.T).detach()
                    loss = pairwise_similarity_loss(q, similarity, p.similarity_threshold)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total, batches = total + loss.item(), batches + 1
                if phase == "cellnet":
                    self.centres = self._updated_centres(u)
                self._progress(phase, epoch, epochs, pairs=total / batches)

    @torch.no_grad()
    def _assign(self, u: torch.Tensor) -> torch.Tensor:
        self.cellnet.eval()
        return self.cellnet(u).argmax(dim=1)

    # --------------------------------------------------------------- predict
    @torch.no_grad()
    def transform(self, counts: sp.spmatrix) -> np.ndarray:
        """Latent u (cells × latent) of new cells' raw counts over the fitted input's genes (same order)."""
        return self._encode(self._images(counts)).cpu().numpy()


def fit_clusters(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: ScsmdParams | None = None,
    seed: int = 0,
    device: str = "auto",
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray]:
    """scSMD as ``scatlas cluster`` runs it: one fit on raw counts (cells × genes) → (labels, latent u)."""
    model = Scsmd(n_clusters, params, seed, device).fit(counts, gene_names)
    return model.labels_, model.embedding_


def fit_model(
    counts: sp.spmatrix,
    n_clusters: int | None,
    params: ScsmdParams | None = None,
    seed: int = 0,
    device: str = "auto",
    gene_names=None,
) -> FittedClustering:
    """:func:`fit_clusters` keeping the fitted model (``scatlas cluster --save-model``)."""
    return FittedClustering("scsmd", [Scsmd(n_clusters, params, seed, device).fit(counts, gene_names)])
