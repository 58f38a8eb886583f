"""Stage 8b: scanpy quality control, normalisation and highly variable genes of the atlas."""

from __future__ import annotations

import logging
import os

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from scatlas.config import default
from scatlas.io import atomic_output, read_h5ad
from scatlas.preprocess.normalize import TARGET_SUM, log_normalize, mark_highly_variable

log = logging.getLogger(__name__)
QC_COLUMNS = ["kind", "id", "study", "reason"]


def qc_filter(
    adata: ad.AnnData,
    min_genes: int = default("preprocess.min_genes"),
    max_genes: int = default("preprocess.max_genes"),
    max_mito_fraction: float = default("preprocess.max_mito_fraction"),
    min_cells: int = default("preprocess.min_cells"),
    mito_prefix: str = default("preprocess.mito_prefix"),
) -> tuple[ad.AnnData, pd.DataFrame]:
    """Cells and genes passing QC, and a table of what was removed and why (``QC_COLUMNS``).

    ``adata.X`` holds raw counts (cells × genes). A cell is removed with fewer than ``min_genes`` or
    more than ``max_genes`` detected genes (the latter are likely doublets), or with more than
    ``max_mito_fraction`` of its counts on mitochondrial genes (``gene_name`` starting with
    ``mito_prefix``, case-insensitive: broken cells lose cytoplasmic mRNA). Then genes detected in
    fewer than ``min_cells`` of the remaining cells are removed. QC metrics are kept in ``obs``:
    ``n_genes_by_counts``, ``total_counts``, ``pct_counts_mt``.
    """
    names = adata.var["gene_name"] if "gene_name" in adata.var else adata.var_names.to_series()
    adata.var["mt"] = names.astype(str).str.lower().str.startswith(mito_prefix.lower()).to_numpy()
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    n_genes, mito = adata.obs["n_genes_by_counts"], adata.obs["pct_counts_mt"] / 100
    checks = [
        (n_genes < min_genes, lambda i: f"{n_genes.iloc[i]} detected genes < min_genes {min_genes}"),
        (n_genes > max_genes, lambda i: f"{n_genes.iloc[i]} detected genes > max_genes {max_genes}"),
        (mito > max_mito_fraction, lambda i: f"mitochondrial fraction {mito.iloc[i]:.1%} > {max_mito_fraction:.0%}"),
    ]
    reasons = [[] for _ in range(adata.n_obs)]
    for failed, reason in checks:
        for i in np.flatnonzero(failed.to_numpy()):
            reasons[i].append(reason(i))
    study = adata.obs["study"].astype(str) if "study" in adata.obs else pd.Series("", index=adata.obs_names)
    removed = [
        ("cell", cell, study.iloc[i], "; ".join(reasons[i])) for i, cell in enumerate(adata.obs_names) if reasons[i]
    ]
    adata = adata[[not r for r in reasons]].copy()
    if adata.n_obs == 0:
        return adata, pd.DataFrame(removed, columns=QC_COLUMNS)
    n_cells = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    rare = n_cells < min_cells
    removed += [
        ("gene", gene, "", f"detected in {n} cells < min_cells {min_cells}")
        for gene, n in zip(adata.var_names[rare], n_cells[rare], strict=True)
    ]
    adata = adata[:, ~rare].copy()
    return adata, pd.DataFrame(removed, columns=QC_COLUMNS)


def normalize(
    adata: ad.AnnData,
    target_sum: float = TARGET_SUM,
    n_top_genes: int = default("preprocess.n_top_genes"),
    hvg_flavor: str = default("preprocess.hvg_flavor"),
    batch_key: str | None = default("preprocess.hvg_batch_key"),
) -> ad.AnnData:
    """Raw counts in ``X`` → layer ``counts`` (int), ``X`` = log1p(counts / size_factor) (float32,
    :func:`~scatlas.preprocess.normalize.log_normalize`, as the clustering methods see it).

    ``obs['size_factor']`` = total counts / ``target_sum``, so that counts / size_factor sums to
    ``target_sum`` in every cell. ``var['highly_variable']`` marks the ``n_top_genes`` most variable
    genes (at most all genes) on the log scale (:func:`~scatlas.preprocess.normalize.mark_highly_variable`).
    """
    counts = sp.csr_matrix(adata.X).astype(np.int32)
    adata.layers["counts"] = counts
    adata.obs["size_factor"] = np.asarray(counts.sum(axis=1)).ravel() / target_sum
    adata.X = log_normalize(counts.astype(np.float32), target_sum)
    adata.uns["log1p"] = {"base": None}  # as scanpy's log1p records it: its later steps read the base there
    mark_highly_variable(adata, n_top_genes, hvg_flavor, batch_key)
    return adata


def preprocess_atlas(
    atlas: str | os.PathLike,
    output: str | os.PathLike,
    qc_output: str | os.PathLike,
    min_genes: int = default("preprocess.min_genes"),
    max_genes: int = default("preprocess.max_genes"),
    max_mito_fraction: float = default("preprocess.max_mito_fraction"),
    min_cells: int = default("preprocess.min_cells"),
    mito_prefix: str = default("preprocess.mito_prefix"),
    target_sum: float = TARGET_SUM,
    n_top_genes: int = default("preprocess.n_top_genes"),
    hvg_flavor: str = default("preprocess.hvg_flavor"),
    batch_key: str | None = default("preprocess.hvg_batch_key"),
) -> ad.AnnData:
    """Write ``atlas/preprocessed.h5ad`` (:func:`qc_filter` then :func:`normalize`) and the QC table.

    When QC leaves no cell, an empty AnnData is written (and a warning logged): the QC table says why.
    """
    adata = read_h5ad(atlas)
    adata, removed = qc_filter(adata, min_genes, max_genes, max_mito_fraction, min_cells, mito_prefix)
    with atomic_output(qc_output) as tmp:
        removed.to_csv(tmp, sep="\t", index=False)
    if adata.n_obs == 0:
        log.warning("QC removed every cell of %s (see %s); are the thresholds right for this data?", atlas, qc_output)
        adata.layers["counts"] = sp.csr_matrix(adata.shape, dtype=np.int32)
        adata.obs["size_factor"] = np.zeros(0)
        adata.var["highly_variable"] = False
    else:
        adata = normalize(adata, target_sum, n_top_genes, hvg_flavor, batch_key)
    log.info(
        "QC kept %d cells x %d genes; removed %d cells, %d genes",
        adata.n_obs,
        adata.n_vars,
        (removed["kind"] == "cell").sum(),
        (removed["kind"] == "gene").sum(),
    )
    with atomic_output(output) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    return adata
