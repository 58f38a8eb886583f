"""scDMAC (seed 001; SPEC §2.1): fit / predict / save / load around the modules of :mod:`scatlas.nn.scdmac`.

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

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.neighbors import NearestNeighbors
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scatlas.models.base import ClusteringModel, Params
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
from scatlas.partition import ensemble_partition, estimate_n_clusters
from scatlas.preprocess.normalize import TARGET_SUM, highly_variable, log_normalize

log = logging.getLogger(__name__)

SILHOUETTE_CELLS = 5000  # cells on which the silhouette of a K-means restart is computed


@dataclass
class ScdmacParams(Params):
    """Hyper-parameters: the paper's optima where it gives them (seed 001 §3.3: λ, γ_m; the masking ratio
    read as the share of entries masked, see ``mask_ratio``), else scMAE's (genes, embedding size, epochs).

    Two stages of the paper's model are off by default (benchmarks/clustering.py, README "Clustering"):
    the ZINB denoising (``denoise``; it lowered the ARI on most labelled sets: the denoised matrix loses
    the small populations as the denoiser trains; cite_cbmc, the largest with 8617 cells, is the
    exception: 0.647 against 0.572 over 5 seeds, but not on its random subsamples of 2000, 4000 and 6000
    cells, so it is no rule by size) and the training-time augmentations
    (``gene_zero_rate``, ``noise_variance``, ``neighbour_swap_rate``; the paper's values are 0.1, 0.6
    and 0.2: zeisel 0.89 → 0.90, but their Gaussian noise makes every swapped entry differ, as
    ``mask_target`` "swapped" does, and drops baron_mouse, whose modelled genes are 94 % zeros, to
    0.3–0.45). Setting them gives the paper's full model.
    """

    model_name = "scDMAC"

    # highly variable genes modelled (scatlas.preprocess.normalize.highly_variable: scanpy's seurat flavour). The
    # seurat_v3 flavour (variance of standardised counts, scanpy's choice for UMI counts), 5 seeds: baron_mouse
    # 0.713 (0.90 on two seeds, 0.59 on three: beta cells split; 0.891 with 100 K-means restarts), zeisel
    # 0.856 against 0.892, deng 0.411 against 0.428, mouse_bladder 0.516 against 0.582 (seeds 0–2).
    # 2000 genes (the baselines' number; 2026-12-01): baron_mouse 0.465 / 0.467 (seeds 0, 1), zeisel 0.711
    # (seed 0): the added sparse genes carry sequencing depth and donor, and K-means splits the beta cells
    # three ways (median library sizes 2400, 4700 and 8800 counts). 750 and 1500 (2026-12-03, masking stage
    # alone: K-means centres, no refinement, one weight-averaged fit, seeds 0–2; 1000: baron_mouse 0.855,
    # human_kidney 0.722, mouse_bladder_2100 0.608, pbmc4k 0.716, zeisel 0.891): 750 gives 0.859 / 0.675 /
    # 0.545 / 0.660 / 0.893, 1500 gives 0.882 / 0.631 / 0.544 / 0.731 / 0.875
    # Other flavours (2026-12-04, full fit, bfloat16, seeds 0–2, the same five sets; seurat: 0.869 / 0.737 /
    # 0.613 / 0.728 / 0.893): scanpy's analytic Pearson residuals on counts 0.507 / 0.579 / 0.490 / 0.709 /
    # 0.830, cell_ranger (dispersions normalised by median and MAD) 0.879 / 0.523 / 0.411 / 0.682 / 0.862
    n_top_genes: int = 1000
    # stage 1: ZINB denoising autoencoder (DCA / scDeepCluster layout)
    denoise: bool = False  # True = the paper's denoising stage (off = its ablation scDMAC-Z)
    zinb_hidden: list[int] = field(default_factory=lambda: [256, 64])
    zinb_latent: int = 32
    zinb_input_noise: float = 1.0  # sd of Gaussian noise on the z-scored input while denoising
    zinb_ridge: float = 0.0  # ridge on the drop-out probability (DCA default 0)
    zinb_epochs: int = 20
    # stage 2: masking autoencoder
    # The decoder sees [Z, M'] only. Tried (2026-12-02, 5 seeds): the standardised log library size as a
    # third decoder input (scVI's way of keeping depth out of the embedding): pbmc4k 0.726 ± 0.014 against
    # 0.693 ± 0.03, baron_mouse, kang and mouse_bladder_2100 level, but zeisel 0.873 against 0.892,
    # human_kidney 0.621 / 0.715, mouse_bladder_top2000 0.504 / 0.532, and on seeds 0–2 deng 0.379 / 0.428,
    # cite_cbmc 0.562 / 0.573. The cell type explains 55 % of the log library size's variance on zeisel
    # (neurons about 13 500 counts, glia 3000–4000) and 33 % on human_kidney, so depth partly marks the type
    # there (but also 50 % on pbmc4k, which gained)
    # Width (2026-12-03, one weight-averaged fit, seeds 0–2, against these defaults: baron_mouse 0.864,
    # mouse_bladder_2100 0.596, human_kidney 0.746, pbmc4k 0.728, zeisel 0.893): latent 32, in the paper's
    # range, baron_mouse 0.617, mouse_bladder_2100 0.396; hidden [512, 256] with latent 256 baron_mouse
    # 0.876, mouse_bladder_2100 0.612, but human_kidney 0.655 (0.53 on seed 0), pbmc4k 0.686, zeisel 0.646
    # (seed 0), for 1.3–1.5 times the time
    mae_hidden: list[int] = field(default_factory=lambda: [256, 128])
    latent: int = 128  # embedding size (scMAE 128; the paper 10–32)
    # Masking ratio = the share of entries the perturbation changes, the paper's optimum 0.2–0.3. An entry
    # swapped with an equal value (two zeros) does not change, so the Bernoulli probability of a swap is
    # set from the data: mask_ratio / P(two cells differ), averaged over genes,
    # at most max_mask_probability. Zeisel (half zeros) gets 0.41; sparse sets (over 90 % zeros) the
    # maximum. Measured with a fixed probability: zeisel 0.25 → 0.72, 0.3 → 0.82, 0.4 → 0.86 (0.29 of
    # entries masked), 0.5 → 0.84; mouse_bladder 0.4 → 0.47, 0.55 → 0.63; pbmc4k 0.4 → 0.67, 0.55 → 0.70;
    # baron_mouse 0.87 at 0.4 and 0.55, 0.51 at 0.7 (the input is then mostly another cell's values)
    # At most scMAE's 0.4 (2026-11-29, seeds 0–2): baron_mouse 0.883 against 0.862, mouse_bladder 0.519
    # against 0.582. With the cap at 0.55, K-means' lowest inertia splits baron_mouse's beta cells (0.56 on
    # one seed of three with scMAE's other settings, 0.88 at 0.4), which the silhouette choice avoids.
    # scMAE itself, re-run here with its settings (1000 genes, 0.4, 81 epochs, best inertia of 20 K-means
    # restarts), 5 seeds: baron_mouse 0.889 ± 0.007 with its median library size, 0.876 ± 0.005 per 10^4
    # (SPEC's normalisation, ours); zeisel 0.849 ± 0.008
    mask_ratio: float = 0.3
    max_mask_probability: float = 0.55
    # how X' is shuffled: "cells" = one random permutation of the batch's cells shared by every gene
    # (scMAE's apply_noise: the masked entries of cell i all come from one partner cell, so the mask
    # predictor learns which genes differ between two cells); "genes" = each gene permuted on its own.
    # scMAE's settings on zeisel: "cells" ARI 0.85 / 0.86 / 0.85 (seeds 0–2), "genes" 0.89 / 0.82 / 0.74
    shuffle: str = "cells"
    # M, what the mask predictor is trained to find and λ weighs: "swapped" = every swapped entry (the
    # paper's M ~ Bernoulli), also two equal values swapped for each other; "changed" = only the entries
    # whose value the swap changed (scMAE's rule); "auto" = "swapped" on the genes where two cells differ
    # more often than not (a swap is visible there), "changed" on the others. "swapped" takes away the
    # shortcut "a zero was not masked", so the embedding must place each value in its cell's context:
    # zeisel 0.892 against 0.860 with "changed" (5 seeds). On sparse genes most swaps exchange two zeros,
    # which no predictor can tell, and the embedding falls apart (baron_mouse 0.26, pbmc4k 0.30). With
    # `noise_variance` every swapped entry changes, so the paper's Gaussian noise acts as "swapped".
    mask_target: str = "auto"
    masked_weight: float = 0.7  # λ on masked entries (1 − λ elsewhere); optimum ≈ 0.7
    # False = ablation scDMAC-W: plain MSE. Over 11 sets (5 seeds, 2026-12-01) a wash: better on pbmc4k
    # (0.719 against 0.693), mouse_bladder_2100 (0.626 / 0.588), romanov, steadier on human_kidney; worse on
    # baron_mouse (0.851 / 0.864), mouse_bladder_top2000 (0.496 / 0.532), pollen_scde_64 and cite_cbmc
    weighted_reconstruction: bool = True
    mask_predictor: bool = True  # False = ablation scDMAC-P: no mask predictor, no BCE term
    # γ_m 0.8 (as for n_top_genes above): baron_mouse 0.726, human_kidney 0.672, mouse_bladder_2100 0.521,
    # pbmc4k 0.667, zeisel 0.892; 0.5: 0.832 / 0.639 / 0.621 / 0.696 / 0.867
    mask_loss_weight: float = 0.65  # γ_m; optimum ≈ 0.65
    gene_zero_rate: float = 0.0  # augmentation: share of entries set to a zero count (paper 0.1)
    noise_variance: float = 0.0  # augmentation: Gaussian noise variance, z-scored scale (paper 0.6)
    neighbour_swap_rate: float = 0.0  # augmentation: share of entries taken from a kNN neighbour (paper 0.2)
    n_neighbours: int = 15  # cosine kNN graph for the swaps
    # Tried (2026-12-06, one weight-averaged fit, seeds 0–2; these defaults: zeisel 0.893, baron_mouse 0.864,
    # pbmc4k 0.728, mouse_bladder_2100 0.596, human_kidney 0.746): a depth augmentation, each batch cell's counts
    # binomially thinned to a share U(0.5, 1) of its depth before the z-scored log1p (the target the unthinned
    # cell), gave 0.892 / 0.865 / 0.702 / 0.577 / 0.762 for 1.1–1.3 times the time: depth invariance does not
    # mend baron_mouse's split beta cells and costs pbmc4k and mouse_bladder_2100
    mae_epochs: int = 100
    # > 0: the masking stage ends on an exponential moving average of its weights with this decay (Polyak
    # averaging; 0.995 = a horizon of about 200 optimizer steps, at most a fifth of the stage's steps:
    # ema_decay_for) instead of the last step's weights, which depend on the last few batches and masks.
    # Alone, 0.995 against 0 (2026-12-02, 5 seeds): human_kidney 0.747 ± 0.011 against 0.715 ± 0.093,
    # pbmc4k 0.715 ± 0.029 against 0.693 ± 0.03, the other sets level, but baron_mouse over 10 seeds
    # 0.845 ± 0.027 with two seeds at 0.79 (about 0.868 without); with three members (``ensemble``) the
    # outliers are outvoted, hence both by default
    ema_decay: float = 0.995
    # stage 3: clustering
    inflation: float = 2.0  # r of the weighted soft K-means (1 = no sharpening)
    student_t_dof: float = 1.0
    alpha: float = 1.0  # weight of L_ZINB
    beta: float = 1.0  # weight of L_mae
    # φ and θ: with an early model, at 0.1 the clustering terms (squared distances in the embedding, tens to
    # hundreds) outweighed L_mae and the embedding collapsed (zeisel ARI 0.74 → 0.39). With the present
    # defaults (2026-12-04, one weight-averaged fit, bfloat16, seeds 0–2; 0.01: baron_mouse 0.869,
    # human_kidney 0.737, mouse_bladder_2100 0.613, pbmc4k 0.728, zeisel 0.893) 0.03, 0.1 and 1.0 are all
    # within 0.004 of these: 20 epochs at cluster_learning_rate hardly move the partition
    phi: float = 0.01  # weight of the weighted soft K-means loss
    theta: float = 0.01  # weight of KL(P || Q)
    # without the refinement (0; 2026-12-02, seeds 0–2): cite_cbmc 0.623 against 0.573, baron_mouse 0.853
    # against 0.861, zeisel 0.889 / 0.892, human_kidney 0.658 / 0.685, the other seven sets within 0.012
    cluster_epochs: int = 20  # joint refinement with the total loss (0: K-means centres on the embedding only)
    # K-means restarts for the initial centres. 100 against 20 (5 seeds): baron_mouse 0.870 against 0.864,
    # mouse_bladder 0.621 against 0.588, pbmc4k 0.711 against 0.693, zeisel and deng unchanged, but
    # human_kidney 0.587 against 0.715: among more restarts the silhouette finds, on four seeds of five,
    # a partition it prefers by less than 0.005 whose ARI is 0.53–0.56 (its silhouettes are flat, 0.18–0.19)
    kmeans_n_init: int = 20
    # which restart gives the centres: "silhouette" = the partition with the highest silhouette (on up to
    # 5000 cells), "inertia" = the lowest within-cluster sum of squares (scikit-learn's choice). The
    # lowest inertia often splits a large, spread-out type and merges two small ones (zeisel seed 2:
    # oligodendrocytes split, microglia merged with endothelial cells, ARI 0.81 against 0.85; on
    # baron_mouse ductal cells split); the silhouette penalises both.
    # Choosing again after the refinement (the best-silhouette restart on the refined embedding) gave
    # baron_mouse 0.889 ± 0.009 against 0.857 ± 0.031 but human_kidney 0.57 against 0.73: the refinement
    # pulls cells towards the current centres, which biases the silhouette. With the present defaults
    # (2026-12-02, seeds 0–2): cite_cbmc 0.698 against 0.573, baron_mouse 0.884 / 0.861,
    # mouse_bladder_top2000 0.582 / 0.536, but human_kidney 0.559 / 0.685, pbmc4k 0.670 / 0.703,
    # mouse_bladder_2100 0.558 / 0.582 (0.389 on seed 1), the other five sets within 0.01. On cite_cbmc
    # (seed 0) single K-means restarts score 0.57–0.71 on the refined embedding, 0.48–0.60 on the
    # masking-stage one; 20 more epochs of the masking loss alone at the refinement's learning rate
    # before choosing did not do that (0.554). K-means on the L2-normalised
    # or standardised embedding: better on baron_mouse, worse on zeisel and human_kidney (5 seeds each).
    # Other criteria on the masking-stage embeddings (5 seeds, mean ARI of the chosen restart, 20 restarts;
    # silhouette: baron_mouse 0.856, human_kidney 0.676, mouse_bladder 0.597): lowest inertia (= highest
    # Calinski-Harabasz at fixed K) 0.677 / 0.673 / 0.559; lowest Davies-Bouldin 0.857 / 0.655 / 0.566; the
    # per-cluster mean silhouette 0.856 / 0.617 / 0.586; the best rank sum of silhouette and Davies-Bouldin
    # 0.856 / 0.688 / 0.599, and with 60 restarts 0.860 / 0.716 / 0.571. None is better on all three sets.
    # More (2026-12-03, mouse_bladder_2100, 5 seeds, masking-stage embeddings; silhouette 0.577 ± 0.065): the most
    # typical restart (highest mean ARI to the other 19) 0.557 ± 0.029, and on baron_mouse seed 1 0.507
    # against 0.858; the co-association consensus of the 20 restarts 0.554 ± 0.025; Leiden on the
    # embedding's 15-NN graph at the resolution giving K 0.511 (baron_mouse seeds 0, 1: 0.479 / 0.444
    # against 0.858 / 0.850), and K-means started from Leiden's cluster means no better.
    # On masking-stage embeddings (2026-12-03, one weight-averaged fit, seeds 0–2; this choice: baron_mouse
    # 0.855, human_kidney 0.722, mouse_bladder_2100 0.608, pbmc4k 0.716, zeisel 0.891): Ward linkage 0.844 /
    # 0.645 / 0.547 / 0.661 / 0.879, K-means from Ward's cluster means 0.852 / 0.686 / 0.572 / 0.681 / 0.893,
    # diagonal or spherical Gaussian mixtures 0.45–0.64; K-means on each cell's mean over itself and its
    # 10–30 nearest neighbours better only on pbmc4k (up to 0.740; mouse_bladder_2100 0.50–0.54); spectral on the 15- or
    # 30-NN graph 0.41–0.49 / 0.54–0.60 / 0.49–0.57 / 0.67–0.68 / 0.73–0.83. The embedding limits, not the
    # choice: K-means started from the labelled types' means converges to 0.812 / 0.715 / 0.649 / 0.737 /
    # 0.894, while a 15-nearest-neighbour classifier of the types scores 0.912 / 0.896 / 0.793 / 0.804 /
    # 0.880 (5-fold): the types are apart locally, but not as the equal spheres K-means assumes.
    # Shaping the embedding in the masking stage (2026-12-04, same set-up): an NT-Xent term (τ 0.5, weight 0.1)
    # between two masked copies of each cell gave 0.54 / 0.77 / 0.48 / 0.54 / 0.84; pulling each cell towards
    # its 15 nearest neighbours' mean embedding (weight 0.05 or 0.5) collapsed human_kidney to 0.14; K-means
    # at 2 × K merged by links in the 15-NN graph 0.834 / 0.438 / 0.629 / 0.656 / 0.904.
    # Sequencing depth (2026-12-04, same set-up under bfloat16: 0.860 / 0.718 / 0.625 / 0.716 / 0.891): the
    # embedding predicts the log library size with R² 0.67–0.93, but the depth carries type. K-means on the
    # residual of a linear fit of Z on it gave 0.853 / 0.711 / 0.515 / 0.661 / 0.819 (quadratic: 0.840 /
    # 0.746 / 0.530 / 0.680 / 0.813); K-means with a linear depth term per cluster (Lloyd iterations from the
    # chosen partition: each type a segment along depth, not a sphere) 0.875 / 0.681 / 0.577 / 0.683 / 0.876.
    centre_selection: str = "silhouette"
    # fits (members) that scatlas cluster combines: their partitions by consensus (the co-association's average
    # linkage or a member's partition, whichever agrees best with all: scatlas.partition), their
    # embeddings side by side. Most of the seed-to-seed spread comes from training, not from K-means: a
    # plain fit of human_kidney falls into one of two partitions (ARI about 0.75 or 0.53), and three plain
    # members (ema_decay 0) do not mend it (0.709 ± 0.081; on seed 1 two of three fell into the poor one).
    # Three weight-averaged members (ema_decay 0.995, the defaults) against one plain fit (2026-12-02/03,
    # benchmarks/clustering.py, CPU, mean ARI ± sd over 5 seeds; 10 seeds for the three smallest):
    # human_kidney 0.749 ± 0.004 (0.715 ± 0.093), pbmc4k 0.722 ± 0.012 (0.693 ± 0.03), kang 0.589 ± 0.033
    # (0.539 ± 0.067), mouse_bladder_2100 0.601 ± 0.046 (0.588 ± 0.059), baron_mouse 0.862 ± 0.007
    # (0.864 ± 0.008), romanov 0.190 ± 0.013 (0.176 ± 0.015), pollen_scde_64 0.496 ± 0.11 (0.413 ± 0.18),
    # deng 0.404 (0.412: one seed of ten at 0.28 with either), zeisel 0.893 ± 0.004 (0.892 ± 0.005),
    # cite_cbmc 0.582 ± 0.021 (0.572 ± 0.018), mouse_bladder_top2000 0.561 ± 0.036 (0.532 ± 0.033). Three
    # times the time (zeisel about 210 s on one thread beside another fit); ensemble 1 with ema_decay 0 is
    # the single plain fit. Five members against three (2026-12-03; the same fits, the first three of the five
    # being the defaults' members; CPU, one thread, mean ARI ± sd): deng 0.424 ± 0.004 against 0.406 ± 0.047
    # (10 seeds), mouse_bladder_top2000 0.552 ± 0.013 against 0.561 ± 0.036, pbmc_ifnb_kang 0.599 ± 0.025
    # against 0.589 ± 0.033, mouse_bladder_2100 0.606 ± 0.037 against 0.601 ± 0.047, baron_mouse 0.869 ±
    # 0.006 against 0.861 ± 0.007 (seeds 0–3), pollen_scde_64 0.528 ± 0.11 against 0.495 ± 0.11 and romanov
    # 0.188 ± 0.014 against 0.192 ± 0.014 (9–10 seeds): steadier, by at most 0.03 in the mean, for 5/3 of the
    # time, so three stay the default. K-means (the best silhouette of 20 restarts) on the members' embeddings
    # side by side in place of the consensus: mouse_bladder_2100 0.515, mouse_bladder_top2000 0.378 (seeds 0–2)
    ensemble: int = 3
    # optimisation
    # each training stage takes at least this many optimizer steps (small sets: more epochs). 1600 steps
    # (5 seeds): baron_mouse 0.873 ± 0.007 against 0.857 ± 0.031, but mouse_bladder 0.557 against 0.582,
    # deng 0.365 against 0.397, zeisel 0.886 against 0.892; a cosine learning-rate decay lowered baron_mouse
    min_steps: int = 300
    # 128 against 256 (2026-12-02, seeds 0–2): baron_mouse 0.878 against 0.861, pbmc4k 0.708 / 0.703, zeisel
    # 0.891 / 0.892, but human_kidney 0.677 / 0.685, mouse_bladder_2100 0.568 / 0.582 and cite_cbmc 0.461
    # and 0.422 on seeds 0 and 1 (0.573 on seeds 0–2)
    batch_size: int = 256
    # More or less training (2026-12-03, as for the width above): learning rate 2e-3 baron_mouse 0.878, but
    # mouse_bladder_2100 0.550, human_kidney 0.695, pbmc4k 0.702; 150 masking epochs baron_mouse 0.878,
    # mouse_bladder_2100 0.567, human_kidney 0.662 (0.55 on seed 2); 5e-4 baron_mouse 0.814,
    # mouse_bladder_2100 0.502. Longer training helps baron_mouse and costs the others, as min_steps did.
    # Decoupled weight decay (AdamW) 0.1: level (baron_mouse 0.864, mouse_bladder_2100 0.589); 0.5: 0.860, 0.536
    learning_rate: float = 1e-3
    cluster_learning_rate: float = 1e-4

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
        # per 10^4 (SPEC §2.1), not per median library size (scMAE's normalize_per_cell; its own baron_mouse
        # 0.889 against 0.876 per 10^4). For scDMAC (2026-12-02, seeds 0–2): baron_mouse 0.868 against 0.861,
        # pbmc4k 0.713 / 0.703, mouse_bladder_2100 0.587 / 0.582, zeisel 0.890 / 0.892, human_kidney 0.614 /
        # 0.685 (its median over the file's 2000 genes is 263 counts: log1p of almost raw counts)
        logged = log_normalize(counts)[:, self.genes_].toarray()
        counts = counts[:, self.genes_].toarray()
        mean, sd = logged.mean(axis=0), logged.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0).astype(np.float32)  # constant genes become 0
        # not clipped: at |z| ≤ 10 (Seurat's and scanpy's max_value) baron_mouse went 0.857 → 0.878 and
        # pbmc4k 0.69 → 0.71, but mouse_bladder 0.59 → 0.51 and human_kidney 0.71 → 0.68 (seeds 0–2; baron_mouse 0–4)
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
    if len(members) == 1:
        return members[0].labels_, members[0].embedding_, members
    labels = ensemble_partition([member.labels_ for member in members], members[0].n_clusters_)
    embedding = np.hstack([member.embedding_ / max(float(member.embedding_.std()), 1e-12) for member in members])
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
