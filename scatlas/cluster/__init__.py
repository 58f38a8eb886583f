"""Clustering of raw-count h5ad files: ``scatlas cluster`` (part of the stable command-line contract).

The methods (``scdmac``, ``scsmd``, and the scanpy baselines ``pca-kmeans`` and ``leiden``) are those of
:data:`scatlas.registry.CLUSTERING`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.cluster.data import CountMatrix, on_genes, read_counts
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


def guard_path(output: str | os.PathLike) -> Path:
    """OUT.tsv → OUT.guard.json (the guard's decision on a deep partition: :mod:`scatlas.cluster.guard`)."""
    return embedding_path(output).with_name(embedding_path(output).name.replace(".embedding.npy", ".guard.json"))


def write_clusters(
    matrix: CountMatrix, labels: np.ndarray, embedding: np.ndarray, output: str | os.PathLike, decision=None
) -> None:
    """OUT.tsv (``cell``, ``cluster``; every input cell in input order, NA for all-zero cells),
    OUT.embedding.npy (input cells × latent, NaN rows for all-zero cells) and, for a guarded deep method,
    OUT.guard.json (the guard's choice, reason and statistics), each written atomically."""
    clusters = pd.array([pd.NA] * matrix.n_input_cells, dtype="Int64")
    clusters[matrix.cell_index] = labels
    full = np.full((matrix.n_input_cells, embedding.shape[1]), np.nan, dtype=np.float32)
    full[matrix.cell_index] = embedding
    with atomic_output(embedding_path(output)) as tmp_embedding, atomic_output(output) as tmp_table:
        np.save(tmp_embedding, full)
        pd.DataFrame({"cell": matrix.cell_names, "cluster": clusters}).to_csv(tmp_table, sep="\t", index=False)
    if decision is not None:
        with atomic_output(guard_path(output)) as tmp:
            tmp.write_text(json.dumps(decision, indent=2) + "\n")


def run_clustering(
    method: str | None,
    input: str | os.PathLike,
    n_clusters: int | None,
    output: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
    config: str | os.PathLike | None = None,
    params: dict | None = None,
    threads: int | None = None,
    save_model: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
) -> np.ndarray:
    """``scatlas cluster``: read IN.h5ad (raw counts), cluster, write OUT.tsv and OUT.embedding.npy.

    The method's parameters come from the YAML file ``config`` and then ``params`` (which wins).
    ``threads``: CPU threads of torch (default: torch's choice, every core). ``save_model``: the folder the
    fitted model goes to (deep methods; layout :mod:`scatlas.models.artefacts`). ``model``: a saved model's
    folder that clusters the cells without refitting (``method``, ``n_clusters``, ``seed`` and the
    parameters are then the saved model's).

    Returns the labels of the cells with counts. Bad input and unknown parameters raise
    :class:`~scatlas.io.InputError`; nothing is written then.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    if model is not None:
        from scatlas.models.base import FittedClustering

        fitted = FittedClustering.load(model, device)
        matrix = read_counts(input)
        counts = on_genes(matrix, fitted.input_genes, input)
        labels, embedding = fitted.predict(counts)
        method, seed, guarded = fitted.method, fitted.members[0].seed, fitted.members[0].params.guard
        members = [member.predict(counts) for member in fitted.members]
    else:
        if method is None:
            raise InputError(input, "give --method, or --model DIR to reuse a saved model")
        params = {**load_params(config), **(params or {})}
        matrix = read_counts(input, n_clusters)
        counts, members = matrix.counts, None
        try:
            entry = CLUSTERING.method(method)
            guarded = entry.kind == "deep" and entry.parameters(params).guard
            if save_model is not None or guarded:
                fit = entry.fit_model_function()
                fitted = fit(matrix.counts, n_clusters, entry.parameters(params), seed, device, matrix.gene_names)
                labels, embedding = fitted.labels_, fitted.embedding_
                members = [member.labels_ for member in fitted.members]
            else:
                labels, embedding = cluster_counts(
                    method, matrix.counts, n_clusters, seed, device, params, matrix.gene_names
                )
        except (KeyError, TypeError) as err:
            raise InputError(config or input, err.args[0] if err.args else str(err)) from None
        except RuntimeError as err:
            if "CUDA" not in str(err):
                raise
            raise InputError(input, str(err)) from None
        if save_model is not None:
            fitted.input_genes = [str(g) for g in matrix.gene_names]
            fitted.save(save_model)
    decision = None
    if guarded:
        from scatlas.cluster.guard import guard

        labels, embedding, decision = guard(counts, labels, embedding, len(np.unique(labels)), seed, members)
    write_clusters(matrix, labels, embedding, output, decision)
    log.info("%s: %d cells in %d clusters → %s", method, len(labels), len(np.unique(labels)), output)
    return labels
