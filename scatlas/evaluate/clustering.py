"""ARI, NMI, Hungarian accuracy and silhouette of a clustering (sklearn / scipy implementations)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from scatlas.cluster import embedding_path
from scatlas.cluster.data import read_obs_column
from scatlas.io import InputError, atomic_output

log = logging.getLogger(__name__)


def hungarian_accuracy(truth, predicted) -> float:
    """Share of cells whose cluster maps to their label under the best one-to-one cluster→label matching.

    The matching maximises agreement (``scipy.optimize.linear_sum_assignment`` on the negated
    contingency table; the repositories' ``sklearn.utils.linear_assignment_`` no longer exists).
    """
    table = contingency_matrix(truth, predicted)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def clustering_scores(truth, predicted, embedding: np.ndarray | None = None, seed: int = 0) -> dict:
    """``ari``, ``nmi`` (arithmetic normalisation, sklearn's default), ``acc``, ``silhouette``, ``n_cells``.

    ``silhouette`` is computed on ``embedding`` (cells × dims) with the predicted clusters (Euclidean;
    on a random sample of 10,000 cells for larger sets), None without an embedding or with one cluster.
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    silhouette = None
    if embedding is not None and 1 < len(np.unique(predicted)) < len(predicted):
        sample = min(len(predicted), 10_000)
        silhouette = float(silhouette_score(embedding, predicted, sample_size=sample, random_state=seed))
    return {
        "ari": float(adjusted_rand_score(truth, predicted)),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "acc": hungarian_accuracy(truth, predicted),
        "silhouette": silhouette,
        "n_cells": len(truth),
    }


def score_files(labels: str | os.PathLike, truth: str | os.PathLike, key: str = "label", exclude=()) -> dict:
    """``scatlas score``: OUT.tsv (``cell``, ``cluster``) against ``obs[key]`` of IN.h5ad.

    Cells are matched by name, or by position when the table lists the truth's cells in its order (then
    duplicated names are fine); cells without a cluster (all-zero cells) or without a label are left
    out with a logged note (labels in ``exclude`` count as none). Uses OUT.embedding.npy for the silhouette
    when it exists.
    """
    try:
        table = pd.read_csv(labels, sep="\t", dtype={"cell": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(labels, f"cannot read the clusters table ({str(err).splitlines()[0]})") from None
    missing = {"cell", "cluster"} - set(table.columns)
    if missing:
        raise InputError(labels, f"missing column(s) {', '.join(sorted(missing))}: need cell, cluster")
    truth_column = read_obs_column(truth, key, exclude)
    if len(truth_column) == len(table) and (truth_column.index == table["cell"].to_numpy()).all():
        truth_labels = truth_column  # the table in the truth's order (as scatlas cluster writes it): by position
    else:
        if table["cell"].duplicated().any() or truth_column.index.duplicated().any():
            raise InputError(labels, f"duplicated cell names, and the cells are not in the order of {truth}")
        unknown = set(table["cell"]) - set(truth_column.index)
        if unknown:
            raise InputError(labels, f"{len(unknown)} cell(s) not in {truth}, e.g. {sorted(unknown)[0]}")
        truth_labels = truth_column.reindex(table["cell"].to_numpy())
    keep = table["cluster"].notna().to_numpy() & truth_labels.notna().to_numpy()
    if not keep.any():
        raise InputError(labels, "no cell has both a cluster and a label")
    if not keep.all():
        log.warning("%d cell(s) without a cluster or a label left out of the scores", int((~keep).sum()))
    embedding = None
    path = embedding_path(labels)
    if path.exists():
        embedding = np.load(path)
        if embedding.shape[0] != len(table):
            raise InputError(path, f"{embedding.shape[0]} rows for {len(table)} cells in {labels}")
        embedding = embedding[keep]
    return clustering_scores(truth_labels.to_numpy()[keep].astype(str), table["cluster"].to_numpy()[keep], embedding)


def score_table(runs: list[dict], label_files: list, datasets: dict, output: str | os.PathLike) -> pd.DataFrame:
    """Scores of many clusterings as one TSV: ``dataset``, ``method``, ``seed``, ari, nmi, acc, silhouette, n_cells.

    ``runs``: dicts with dataset, method, seed, aligned with ``label_files`` (their OUT.tsv);
    ``datasets``: name → {``h5ad``: truth file, ``label_key``: obs column (default ``label``),
    ``exclude_labels``: values that are no label}.
    """
    rows = []
    for run, labels in zip(runs, label_files, strict=True):
        dataset = datasets[run["dataset"]]
        key, exclude = dataset.get("label_key", "label"), dataset.get("exclude_labels", ())
        rows.append({**run, **score_files(labels, dataset["h5ad"], key, exclude)})
    table = pd.DataFrame(rows, columns=["dataset", "method", "seed", "ari", "nmi", "acc", "silhouette", "n_cells"])
    with atomic_output(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    return table
