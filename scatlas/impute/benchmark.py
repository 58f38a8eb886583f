"""``scatlas impute-benchmark`` (part of the stable command-line contract): hide a share of the observed counts,
impute with every method, and score each on the hidden entries.

Protocol: a random ``holdout`` share of the non-zero raw counts (over every gene) is set to zero; everything
after that sees only the masked counts — the modelled genes (``n_top_genes`` highly variable genes of the
masked counts), the library sizes and the median target sum, the ln(1 + x) expression every method gets.
The truth at a hidden entry is its count on that same scale: ln(1 + count × target_sum / masked library size).
Changing the hidden counts therefore changes the truth and nothing a method sees.

Scores on the hidden entries of the modelled genes: ``mse_heldout``, ``pearson_heldout`` (over all of them),
``pearson_per_gene_median`` and ``pearson_per_cell_median`` (medians over the genes, and the cells, with at
least 3 hidden entries and non-constant truth and prediction; null when none has).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.io import InputError
from scatlas.preprocess.expression import CountRows, align_genes, choose_genes, median_library_size
from scatlas.preprocess.normalize import log_normalize

log = logging.getLogger(__name__)

MIN_PAIRS = 3  # hidden entries a gene (or cell) needs for its correlation


@dataclass
class Masked:
    """The masked input and the truth: ``x`` ln(1 + x) expression of the masked counts (cells × modelled
    genes, CSR), ``rows`` / ``cols`` / ``truth`` the hidden entries (positions in ``x``, values on its
    scale), ``gene_names`` the modelled genes, ``target_sum`` the counts per cell before the log."""

    x: sp.csr_matrix
    rows: np.ndarray
    cols: np.ndarray
    truth: np.ndarray
    gene_names: pd.Index
    target_sum: float


def hide_counts(counts: sp.spmatrix, fraction: float, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """(masked counts, the hidden entries' positions in ``counts.data`` of the CSR) for a random ``fraction``
    of the non-zero counts (at least one)."""
    counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    counts.eliminate_zeros()
    n_hidden = max(1, round(fraction * counts.nnz))
    hidden = np.sort(np.random.default_rng(seed).choice(counts.nnz, n_hidden, replace=False))
    masked = counts.copy()
    masked.data[hidden] = 0
    return masked, hidden


def mask(rows: CountRows, holdout: float, seed: int, n_top_genes: int = 2000) -> Masked:
    """The benchmark's masked input and truth for the raw counts of ``rows`` (see the module's docstring)."""
    if not 0 < holdout < 1:
        raise InputError(rows.path, f"holdout must lie strictly between 0 and 1, not {holdout}")
    counts = sp.csr_matrix(rows.all(), dtype=np.float32)
    counts.eliminate_zeros()
    if counts.nnz == 0:
        raise InputError(rows.path, "every count is zero: nothing to hide or impute")
    masked, hidden = hide_counts(counts, holdout, seed)
    cell_of_entry = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    masked_rows = CountRows(masked, rows.gene_names, rows.cell_names, rows.path)
    masked_rows.var = rows.var.drop(columns=["highly_variable"], errors="ignore")
    genes = choose_genes(masked_rows, n_top_genes)
    library = np.asarray(masked.sum(axis=1), dtype=np.float64).ravel()
    target_sum = median_library_size(library, rows.path)
    x = log_normalize(masked, target_sum)[:, genes]
    x.eliminate_zeros()
    column = np.full(counts.shape[1], -1)
    column[genes] = np.arange(len(genes))
    cols = column[counts.indices[hidden]]
    keep = cols >= 0
    cells = cell_of_entry[hidden][keep]
    scale = np.divide(target_sum, library, out=np.zeros_like(library), where=library > 0)
    truth = np.log1p(counts.data[hidden][keep] * scale[cells]).astype(np.float32)
    return Masked(x, cells, cols[keep], truth, rows.gene_names[genes], target_sum)


def _grouped_pearson(groups: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Median over ``groups`` of the Pearson correlation of ``truth`` and ``predicted`` within each."""
    order = np.argsort(groups, kind="stable")
    groups, truth, predicted = groups[order], truth[order].astype(np.float64), predicted[order].astype(np.float64)
    bounds = np.flatnonzero(np.diff(groups)) + 1
    values = []
    for t, p in zip(np.split(truth, bounds), np.split(predicted, bounds), strict=True):
        if t.size >= MIN_PAIRS and t.std() > 0 and p.std() > 1e-12:
            values.append(np.corrcoef(t, p)[0, 1])
    return float(np.median(values)) if values else float("nan")


def score(masked: Masked, imputed: np.ndarray) -> dict[str, float]:
    """The four scores ``impute-benchmark`` reports for an imputed matrix (cells × modelled genes, the scale of
    ``masked.x``)."""
    predicted = np.asarray(imputed[masked.rows, masked.cols], dtype=np.float64)
    truth = masked.truth.astype(np.float64)
    pearson = np.corrcoef(truth, predicted)[0, 1] if predicted.std() > 1e-12 and truth.std() > 0 else float("nan")
    return {
        "mse_heldout": float(np.mean((truth - predicted) ** 2)),
        "pearson_heldout": float(pearson),
        "pearson_per_gene_median": _grouped_pearson(masked.cols, truth, predicted),
        "pearson_per_cell_median": _grouped_pearson(masked.rows, truth, predicted),
    }


def reference_expression(reference: CountRows, masked: Masked, fill_missing: bool = False) -> sp.csr_matrix:
    """The reference's ln(1 + x) expression over the target's modelled genes, at the target's target sum
    (TRANSLATE's step 1); genes matched by name (:func:`scatlas.preprocess.expression.align_genes`)."""
    from scatlas.preprocess.expression import LogExpression

    genes = align_genes(reference.gene_names, masked.gene_names, reference.path, fill_missing, "the target's")
    data = LogExpression(reference, genes, masked.target_sum, masked.gene_names)
    return sp.vstack([block for _, _, block in data.blocks()], format="csr")


def benchmark(
    rows: CountRows,
    methods: list[str],
    holdout: float = 0.1,
    seed: int = 0,
    device: str = "auto",
    reference: CountRows | None = None,
    params: dict | None = None,
    n_top_genes: int = 2000,
    fill_missing: bool = False,
) -> dict[str, dict[str, float]]:
    """Scores (:func:`score`) and fit seconds of each of ``methods`` (:data:`scatlas.registry.IMPUTATION`) on
    one masking of ``rows``; ``params``: method name → its parameters by name."""
    from scatlas.registry import IMPUTATION

    entries = [IMPUTATION.method(name) for name in methods]  # an unknown name fails before any fit
    try:
        parameters = {e.name: e.parameters((params or {}).get(e.name, {})) for e in entries}
    except KeyError as err:
        raise InputError(rows.path, err.args[0]) from None
    masked = mask(rows, holdout, seed, n_top_genes)
    ref = None
    if "translate" in methods:
        if reference is None:
            raise InputError(rows.path, "method translate needs --reference REF.h5ad")
        ref = reference_expression(reference, masked, fill_missing)
    log.info(
        "%s: %d cells × %d genes, %d hidden entries (%.0f %% of non-zeros), target sum %.0f",
        rows.path,
        *masked.x.shape,
        masked.truth.size,
        100 * holdout,
        masked.target_sum,
    )
    results = {}
    for entry in entries:
        started = time.perf_counter()
        imputed = entry.fit_function()(masked.x, parameters[entry.name], seed, device, ref)
        seconds = time.perf_counter() - started
        results[entry.name] = score(masked, imputed) | {"seconds": round(seconds, 2)}
        log.info("%s: %s", entry.name, results[entry.name])
    return results


def run_benchmark(
    input: str | os.PathLike,
    holdout: float = 0.1,
    seed: int = 0,
    reference: str | os.PathLike | None = None,
    methods: list[str] | None = None,
    device: str = "auto",
    params: dict | None = None,
    n_top_genes: int = 2000,
    fill_missing: bool = False,
) -> dict[str, dict[str, float]]:
    """``scatlas impute-benchmark``: every method of :data:`scatlas.registry.IMPUTATION` (``translate`` only
    with a ``reference``) unless ``methods`` names some."""
    from scatlas.preprocess.expression import read_counts
    from scatlas.registry import IMPUTATION

    if not 0 < holdout < 1:
        raise InputError(input, f"--holdout must lie strictly between 0 and 1, not {holdout}")
    if methods is None:
        methods = [m for m in IMPUTATION.names() if m != "translate" or reference is not None]
    rows = read_counts(input)
    ref = read_counts(reference) if reference is not None else None
    return benchmark(rows, methods, holdout, seed, device, ref, params, n_top_genes, fill_missing)
