"""Imputation of raw-count h5ad files: ``scatlas impute`` and ``scatlas impute-benchmark``
(both part of the stable command-line contract).

``scatlas impute`` fits LATE (or TRANSLATE: LATE on a reference, fine-tuned on the input) on the input's
modelled genes and writes OUT.h5ad: ``X`` the observed ln(1 + x) expression (CSR), layer ``imputed`` the
model's output for every entry (dense, same scale), ``uns['impute']`` the method, scale and parameters;
the fitted model goes to OUT.model/ (or ``save_model``). Counts are read from the file and the result written
to it a block of cells at a time, so neither the input nor the dense imputed layer is ever whole in memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import pandas as pd

from scatlas.io import InputError, atomic_output
from scatlas.params import load_params
from scatlas.preprocess.expression import (
    NORMALISATION,
    H5adCountRows,
    LogExpression,
    align_genes,
    choose_genes,
    median_library_size,
    read_counts,
)

log = logging.getLogger(__name__)

METHODS = ("late", "translate")


def model_path(output: str | os.PathLike) -> Path:
    """OUT.h5ad → OUT.model/, where ``scatlas impute`` saves the fitted model by default."""
    output = Path(output)
    stem = output.name[: -len(".h5ad")] if output.name.endswith(".h5ad") else output.name
    return output.with_name(f"{stem}.model")


def expression_for(rows: H5adCountRows, n_top_genes: int, target_sum: float) -> LogExpression:
    """The log expression LATE fits on ``rows``: its modelled genes
    (:func:`~scatlas.preprocess.expression.choose_genes`)
    at ``target_sum`` counts per cell (0: the median library size)."""
    genes = choose_genes(rows, n_top_genes)
    if target_sum <= 0:
        target_sum = median_library_size(rows.library_sizes(), rows.path)
    elif not (rows.library_sizes() > 0).any():
        raise InputError(rows.path, "every count is zero: nothing to impute from")
    return LogExpression(rows, genes, target_sum)


def write_imputed(model, data: LogExpression, rows: H5adCountRows, output: str | os.PathLike, uns: dict) -> None:
    """OUT.h5ad (see the module's docstring), written block by block to a temporary file renamed at the end."""
    import anndata as ad
    import h5py

    if (data.genes < 0).any():  # genes the input lacks (--fill-missing): no annotation to copy
        var = pd.DataFrame(index=data.gene_names)
    else:
        var = rows.var.iloc[data.genes].copy()
        var.index = data.gene_names
    obs = rows.obs.copy()
    obs.index = rows.cell_names
    skeleton = ad.AnnData(obs=obs, var=var, uns={"impute": uns})
    with atomic_output(output) as tmp:
        skeleton.write_h5ad(tmp)
        with h5py.File(tmp, "a") as f:
            imputed = f.require_group("layers").create_dataset(
                "imputed",
                shape=(data.n_cells, data.n_genes),
                dtype="float32",
                chunks=(min(max(data.n_cells, 1), 1024), data.n_genes),
            )
            imputed.attrs["encoding-type"], imputed.attrs["encoding-version"] = "array", "0.2.0"
            x = None
            for start, end, block in model.impute_blocks(data):
                imputed[start:end] = block
                observed = data.block(start, end)
                if x is None:
                    ad.io.write_elem(f, "X", observed)
                    x = ad.io.sparse_dataset(f["X"])
                else:
                    x.append(observed)


def run_impute(
    method: str,
    input: str | os.PathLike,
    output: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "auto",
    config: str | os.PathLike | None = None,
    params: dict | None = None,
    save_model: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    fill_missing: bool = False,
    threads: int | None = None,
):
    """``scatlas impute``: fit ``method`` (``late`` or ``translate``, which needs ``reference``) on IN.h5ad's raw
    counts, or reuse the model saved in ``model`` without refitting, and write OUT.h5ad and the model
    (``save_model``, default OUT.model/). Parameters: the fields of :class:`~scatlas.models.late.LateParams`,
    from the YAML file ``config`` and then ``params`` (which wins). Returns the model.

    Bad input (unreadable files, non-count or all-zero matrices, a reference without the input's genes,
    unknown or mistyped parameters) raises :class:`~scatlas.io.InputError`; nothing is written then.
    """
    import torch

    from scatlas.models.late import Late, LateParams

    if method not in METHODS:
        raise InputError(input, f"unknown imputation method {method!r}; choose from {', '.join(METHODS)}")
    if threads:
        torch.set_num_threads(threads)
    values = {**load_params(config), **(params or {})}
    try:
        late_params = LateParams.from_dict(values)
    except KeyError as err:
        raise InputError(config or input, err.args[0]) from None
    rows = read_counts(input)
    try:
        if model is not None:
            fitted = Late.load(model, device)
            genes = align_genes(rows.gene_names, fitted.gene_names, input, fill_missing)
            data = LogExpression(rows, genes, fitted.target_sum, fitted.gene_names)
        else:
            data = expression_for(rows, late_params.n_top_genes, late_params.target_sum)
            fitted = Late(late_params, seed, device)
            if method == "translate":
                if not reference:
                    raise InputError(input, "method translate needs --reference REF.h5ad")
                ref_rows = read_counts(reference)
                ref_genes = align_genes(ref_rows.gene_names, data.gene_names, reference, fill_missing, "the input's")
                fitted.fit(LogExpression(ref_rows, ref_genes, data.target_sum, data.gene_names), "pretrain")
                fitted.fine_tune(data)
            else:
                fitted.fit(data)
    except RuntimeError as err:
        if "CUDA" not in str(err):
            raise
        raise InputError(input, str(err)) from None
    uns = {
        "method": method if model is None else f"{method} (saved model {model})",
        "scale": "natural log",
        "normalisation": NORMALISATION,
        "target_sum": data.target_sum,
        "layer": "imputed: the model's output for every entry; X: the observed values (zeros unobserved)",
        "params": json.dumps(dataclasses.asdict(fitted.params)),
        "seed": fitted.seed,
        "reference": str(reference) if reference else "",
    }
    write_imputed(fitted, data, rows, output, uns)
    if model is None:
        fitted.save(save_model or model_path(output))
    log.info("%s: %d cells × %d genes imputed → %s", method, data.n_cells, data.n_genes, output)
    return fitted
