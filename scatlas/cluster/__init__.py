"""Clustering of raw-count h5ad files: ``scatlas cluster`` (part of the stable command-line contract).

The methods (``scdmac``, ``scsmd``, and the scanpy baselines ``pca-kmeans`` and ``leiden``) are those of
:data:`scatlas.registry.CLUSTERING`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.cluster.data import CountMatrix, read_counts
from scatlas.io import InputError, atomic_output
from scatlas.params import load_params
from scatlas.registry import CLUSTERING

log = logging.getLogger(__name__)


def cluster_counts(
    method: str,
    counts: sp.csr_matrix,
    n_clusters: int | None,
    seed: int = 0,
    device: str = "auto",
    params: dict | None = None,
    gene_names=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster raw counts (cells × genes, no all-zero cells) with ``method``: (labels, embedding).

    ``n_clusters`` None: K is estimated (Leiden at resolution 1 on the method's embedding).

    ``params``: the method's parameters by name (the fields of its parameter class, e.g.
    :class:`~scatlas.models.ScdmacParams`); an unknown method, or an unknown or mistyped parameter,
    raises ``KeyError``.
    """
    entry = CLUSTERING.method(method)
    fit = entry.fit_function()
    return fit(counts, n_clusters, entry.parameters(params or {}), seed, device, gene_names)


def embedding_path(output: str | os.PathLike) -> Path:
    """OUT.tsv → OUT.embedding.npy (the command-line contract's name of the embedding file)."""
    output = Path(output)
    stem = output.name[: -len(".tsv")] if output.name.endswith(".tsv") else output.name
    return output.with_name(f"{stem}.embedding.npy")


def write_clusters(matrix: CountMatrix, labels: np.ndarray, embedding: np.ndarray, output: str | os.PathLike) -> None:
    """OUT.tsv (``cell``, ``cluster``; every input cell in input order, NA for all-zero cells) and
    OUT.embedding.npy (input cells × latent, NaN rows for all-zero cells), both written atomically."""
    clusters = pd.array([pd.NA] * matrix.n_input_cells, dtype="Int64")
    clusters[matrix.cell_index] = labels
    full = np.full((matrix.n_input_cells, embedding.shape[1]), np.nan, dtype=np.float32)
    full[matrix.cell_index] = embedding
    with atomic_output(embedding_path(output)) as tmp_embedding, atomic_output(output) as tmp_table:
        np.save(tmp_embedding, full)
        pd.DataFrame({"cell": matrix.cell_names, "cluster": clusters}).to_csv(tmp_table, sep="\t", index=False)


def run_clustering(
    method: str,
    input: str | os.PathLike,
    n_clusters: int | None,
    output: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
    config: str | os.PathLike | None = None,
    params: dict | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """``scatlas cluster``: read IN.h5ad (raw counts), cluster, write OUT.tsv and OUT.embedding.npy.

    The method's parameters come from the YAML file ``config`` and then ``params`` (which wins).
    ``threads``: CPU threads of torch (default: torch's choice, every core).

    Returns the labels of the cells with counts. Bad input and unknown parameters raise
    :class:`~scatlas.io.InputError`; nothing is written then.
    """
    params = {**load_params(config), **(params or {})}
    if threads:
        import torch

        torch.set_num_threads(threads)
    matrix = read_counts(input, n_clusters)
    try:
        labels, embedding = cluster_counts(method, matrix.counts, n_clusters, seed, device, params, matrix.gene_names)
    except (KeyError, TypeError) as err:
        raise InputError(config or input, err.args[0] if err.args else str(err)) from None
    except RuntimeError as err:
        if "CUDA" not in str(err):
            raise
        raise InputError(input, str(err)) from None
    write_clusters(matrix, labels, embedding, output)
    log.info("%s: %d cells in %d clusters → %s", method, len(labels), len(np.unique(labels)), output)
    return labels
