"""Normalisation and highly variable genes: the one implementation behind the atlas's preprocessing and
every clustering method (log1p of counts per 10^4; scanpy's highly variable genes on that scale)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp

TARGET_SUM = 1e4  # counts per cell after normalization (scanpy / Seurat convention, scDMAC Eq. 1)


def log_normalize(counts: sp.spmatrix, target_sum: float = TARGET_SUM) -> sp.csr_matrix:
    """log1p of counts per ``target_sum`` (cells × genes, raw counts in, log-normalized float32 out).

    Each cell's counts are multiplied by ``target_sum`` / its total over all genes of ``counts``, in the
    precision of ``counts`` (float32 counts: float32 throughout). A cell without counts stays zero.
    """
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.zeros(totals.shape, dtype=np.result_type(totals.dtype, np.float32))
    np.divide(target_sum, totals, out=scale, where=totals > 0)
    return sp.csr_matrix(sp.diags(scale) @ counts).log1p().astype(np.float32)


def mark_highly_variable(
    adata: ad.AnnData, n_top_genes: int, flavor: str = "seurat", batch_key: str | None = None
) -> np.ndarray:
    """Set ``var['highly_variable']`` (and scanpy's ``means``, ``dispersions``, ``dispersions_norm``) for the
    ``n_top_genes`` most variable genes of ``adata.X`` (log-normalized, :func:`log_normalize`; at most
    every gene); return that boolean mask.

    ``flavor``: scanpy's ``seurat`` (dispersion of the log data, binned by mean) or ``cell_ranger``;
    ``batch_key``: an obs column whose batches are ranked separately and then combined.
    """
    sc.pp.highly_variable_genes(adata, n_top_genes=min(n_top_genes, adata.n_vars), flavor=flavor, batch_key=batch_key)
    return adata.var["highly_variable"].to_numpy()


def highly_variable(counts: sp.spmatrix, n_top_genes: int, min_cells: int = 3) -> np.ndarray:
    """Indices of the ``n_top_genes`` most variable genes of raw counts (cells × genes):
    :func:`mark_highly_variable` on their :func:`log_normalize` values, among the genes detected in at
    least ``min_cells`` cells (scanpy's usual ``filter_genes(min_cells=3)``; the atlas's QC removes the
    others before it marks its genes).

    On sparse data a gene seen in one or two cells ranks high by dispersion but marks no population:
    without the filter 266 of mouse_bladder_2100's 1000 genes were such genes. Every candidate is kept
    when there are no more than ``n_top_genes``; with fewer than ``min_cells`` cells every gene is a candidate.
    """
    detected = np.asarray((counts > 0).sum(axis=0)).ravel()
    candidates = np.flatnonzero(detected >= (min_cells if counts.shape[0] >= min_cells else 1))
    if candidates.size <= n_top_genes:
        return candidates
    return candidates[mark_highly_variable(ad.AnnData(log_normalize(counts)[:, candidates]), n_top_genes)]
