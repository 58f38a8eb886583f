"""Do no harm: a label-free check that a deep model's partition is not worse than PCA + K-means' on the same
cells, and the fallback when it is.

The statistics (:func:`guard_statistics`) read only the data and the partitions: how well the deep members
agree with each other, how stable K-means on the principal components is over seeds, how much the two
partitions agree, and each partition's silhouette in both embeddings (the deep one and the PCA one). A
partition favoured only in its own embedding scores low in the other one, so the guard compares each
partition's mean over the two. docs/models/scdmac.md has the study behind the rule and its threshold.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

log = logging.getLogger(__name__)

SILHOUETTE_CELLS = 4000  # cells the silhouettes are computed on (a seeded sample of larger sets)


def pca_partitions(pca: np.ndarray, n_clusters: int, seeds: Sequence[int] = (0, 1, 2), n_init: int = 10) -> list:
    """K-means partitions of the principal components, one per seed (pca-kmeans' own fit at seed 0)."""
    return [KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(pca) for seed in seeds]


def _mean_pairwise_ari(partitions: Sequence[np.ndarray]) -> float:
    pairs = list(itertools.combinations(partitions, 2))
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs])) if pairs else float("nan")


def _silhouette(embedding: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return float("nan")
    size = min(SILHOUETTE_CELLS, len(labels))
    return float(silhouette_score(embedding, labels, sample_size=size, random_state=seed))


def guard_statistics(
    members: Sequence[np.ndarray],
    labels: np.ndarray,
    embedding: np.ndarray,
    pca_labels: Sequence[np.ndarray],
    pca: np.ndarray,
    seed: int = 0,
) -> dict[str, float]:
    """Label-free statistics of a deep partition (``labels`` on ``embedding``, from ``members``) against
    PCA + K-means (``pca_labels`` over seeds, the first the reference one, on ``pca``)."""
    sil = {
        "sil_deep_in_deep": _silhouette(embedding, labels, seed),
        "sil_pca_in_deep": _silhouette(embedding, pca_labels[0], seed),
        "sil_deep_in_pca": _silhouette(pca, labels, seed),
        "sil_pca_in_pca": _silhouette(pca, pca_labels[0], seed),
    }
    return {
        "member_agreement": _mean_pairwise_ari(members),
        "pca_stability": _mean_pairwise_ari(pca_labels),
        "deep_pca_agreement": float(adjusted_rand_score(labels, pca_labels[0])),
        **sil,
        "cross_deep": (sil["sil_deep_in_deep"] + sil["sil_deep_in_pca"]) / 2,
        "cross_pca": (sil["sil_pca_in_deep"] + sil["sil_pca_in_pca"]) / 2,
    }


MARGIN = 0.05  # PCA + K-means' silhouette over both embeddings must exceed the deep partition's by this


def decide(statistics: dict[str, float]) -> tuple[str, str]:
    """(``"deep"`` or ``"pca-kmeans"``, the reason in one line) from :func:`guard_statistics`.

    Each partition's silhouette is averaged over the two embeddings (the deep one and the principal
    components), so that neither is judged only where it was fitted; the deep partition is kept unless
    PCA + K-means' average exceeds its own by :data:`MARGIN`.
    """
    deep, base = statistics["cross_deep"], statistics["cross_pca"]
    choice = "pca-kmeans" if base > deep + MARGIN else "deep"
    return choice, f"silhouette over both embeddings: deep {deep:.3f}, PCA + K-means {base:.3f} (margin {MARGIN})"


def guard(counts, labels: np.ndarray, embedding: np.ndarray, n_clusters: int, seed: int = 0, members=None):
    """A deep partition, or PCA + K-means' when :func:`decide` says so: (labels, embedding, decision).

    ``counts``: the raw counts the deep model clustered; the PCA side is pca-kmeans' own fit with its
    defaults and ``seed``. ``decision``: the choice, the reason and the statistics (JSON-able).
    """
    from scatlas.cluster.baselines import PcaKmeansParams, pca_embedding

    p = PcaKmeansParams()
    pca = pca_embedding(counts, p.n_top_genes, p.n_comps, seed)
    k = n_clusters or len(np.unique(labels))
    pca_labels = pca_partitions(pca, k, seeds=(seed,), n_init=p.n_init)
    members = members if members is not None else [labels]
    statistics = guard_statistics(members, labels, embedding, pca_labels, pca, seed)
    choice, reason = decide(statistics)
    figures = {name: None if np.isnan(value) else round(value, 4) for name, value in statistics.items()}
    decision = {"choice": choice, "reason": reason, "statistics": figures}
    log.info("guard: %s (%s)", "kept the deep partition" if choice == "deep" else "fell back to PCA + K-means", reason)
    if choice == "deep":
        return labels, embedding, decision
    return pca_labels[0], pca.astype(np.float32), decision
