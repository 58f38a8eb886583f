"""Reading a clustering input: the raw counts of an h5ad, and the true labels of a labelled set.

The normalisation and gene selection the methods share are :mod:`scatlas.preprocess.normalize`'s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.io import InputError, raw_counts, read_h5ad

log = logging.getLogger(__name__)


@dataclass
class CountMatrix:
    """Raw counts of the cells and genes a method can use, and where they sit in the input.

    ``counts``: cells × genes, CSR float32 raw counts (all-zero cells and genes removed);
    ``cell_index``: positions of these cells among the input's cells (the others were all-zero);
    ``n_input_cells``; ``cell_names`` of all input cells, in input order; ``gene_names`` of the kept genes.
    """

    counts: sp.csr_matrix
    cell_index: np.ndarray
    n_input_cells: int
    cell_names: np.ndarray
    gene_names: np.ndarray


def read_counts(path: str | os.PathLike, n_clusters: int | None = None) -> CountMatrix:
    """Read the raw counts of an h5ad (layer ``counts`` when present, else ``X``, else ``raw.X``:
    :func:`scatlas.io.raw_counts`); drop all-zero cells and genes (with a logged note).

    Raises :class:`~scatlas.io.InputError` when the counts hold negative, non-finite or non-integer values
    (normalized or log-transformed data), when no cell has counts, or when ``n_clusters`` is not
    between 1 and the number of cells with counts.
    """
    adata = read_h5ad(path)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(path, "no cells or no genes: need cells × genes raw counts")
    counts, genes = raw_counts(adata, path)
    counts = counts.astype(np.float64)
    cell_totals = np.asarray(counts.sum(axis=1)).ravel()
    gene_totals = np.asarray(counts.sum(axis=0)).ravel()
    cell_index = np.flatnonzero(cell_totals > 0)
    gene_index = np.flatnonzero(gene_totals > 0)
    if cell_index.size == 0:
        raise InputError(path, "every cell has zero counts")
    if cell_index.size < 2:
        raise InputError(path, f"{cell_index.size} cell with counts: clustering needs at least 2")
    if cell_index.size < adata.n_obs:
        log.warning(
            "%s: %d all-zero cell(s) left out of clustering (their cluster is NA)", path, adata.n_obs - cell_index.size
        )
    if gene_index.size < adata.n_vars:
        log.info("%s: %d all-zero gene(s) dropped", path, adata.n_vars - gene_index.size)
    if n_clusters is not None and not 1 <= n_clusters <= cell_index.size:
        raise InputError(
            path, f"--n-clusters {n_clusters} is not between 1 and the {cell_index.size} cells with counts"
        )
    return CountMatrix(
        counts=counts[cell_index][:, gene_index].astype(np.float32).tocsr(),
        cell_index=cell_index,
        n_input_cells=adata.n_obs,
        cell_names=np.asarray(adata.obs_names),
        gene_names=np.asarray(genes)[gene_index],
    )


def on_genes(matrix: CountMatrix, genes, path) -> sp.csr_matrix:
    """``matrix``'s counts over ``genes`` (by name, in that order; genes the file lacks or has no counts of
    are zeros): a saved model's input genes. No shared gene raises :class:`~scatlas.io.InputError`."""
    position = pd.Index(matrix.gene_names).get_indexer(pd.Index(genes))
    found = position >= 0
    if not found.any():
        raise InputError(path, "shares no gene name with the saved model's genes")
    if not found.all():
        log.warning("%s: %d of the model's %d genes missing, read as zeros", path, (~found).sum(), len(genes))
    columns = sp.csr_matrix(
        (np.ones(found.sum(), dtype=np.float32), (position[found], np.flatnonzero(found))),
        shape=(matrix.counts.shape[1], len(genes)),
    )
    return (matrix.counts @ columns).tocsr()


def standardize(x: np.ndarray) -> np.ndarray:
    """Per-gene z-score of a dense cells × genes matrix; constant genes become 0."""
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    return ((x - mean) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def read_obs_column(path: str | os.PathLike, key: str = "label", exclude=()) -> pd.Series:
    """``obs[key]`` of an h5ad (the true labels of a labelled set), indexed by cell name; values in
    ``exclude`` (e.g. the atlas's "unlabelled") read as missing."""
    obs = read_h5ad(path, backed="r").obs
    if key not in obs.columns:
        raise InputError(path, f"no obs column {key!r} (columns: {', '.join(map(str, obs.columns))})")
    column = obs[key]
    column.index = column.index.astype(str)
    if len(exclude):
        column = column.astype(object).where(~column.astype(str).isin(list(exclude)))
    return column


def count_labels(path: str | os.PathLike, key: str = "label", exclude=()) -> int:
    """Number of distinct non-missing values of ``obs[key]`` in an h5ad, those in ``exclude`` left out (the
    default K of a labelled set)."""
    return int(read_obs_column(path, key, exclude).nunique(dropna=True))


def dataset_n_clusters(entry: dict, path: str | os.PathLike | None = None) -> int:
    """K of a clustering dataset (a ``cluster.datasets`` entry): its ``n_clusters``, else the number of its
    labels (those in ``exclude_labels`` left out) in ``path`` (default the entry's h5ad)."""
    if entry.get("n_clusters"):
        return int(entry["n_clusters"])
    return count_labels(path or entry["h5ad"], entry.get("label_key", "label"), entry.get("exclude_labels", ()))
