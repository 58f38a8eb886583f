"""Imputation at atlas scale: wall time and peak memory of ``scatlas impute --method late`` on a synthetic
atlas (default 200 000 cells × 2 000 genes, ≈ 10 % non-zero negative-binomial-like counts).

The command runs as the workflow's rule runs it (a child process, the model and OUT.h5ad written); its
peak resident memory is the child's ``ru_maxrss``. ``--epochs`` caps LATE's epochs so that the run measures
memory and the time per epoch, not a converged fit (the memory does not grow with the epochs).

    nice -n 10 .venv/bin/python benchmarks/impute_scale.py [--cells 200000] [--genes 2000] [--epochs 1]

Results: ``benchmarks/results/<date>_<commit>/impute_scale.tsv`` (one row per run), env beside it.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, result_path, write_result


def synthetic_counts(n_cells: int, n_genes: int, density: float, seed: int) -> sp.csr_matrix:
    """Cells × genes counts with uniform non-zero positions and a per-gene scale (no all-zero cell)."""
    rng = np.random.default_rng(seed)
    per_cell = rng.binomial(n_genes, density, size=n_cells).clip(1, n_genes)
    indptr = np.concatenate([[0], np.cumsum(per_cell)])
    columns = np.concatenate([np.sort(rng.choice(n_genes, k, replace=False)) for k in per_cell]).astype(np.int32)
    scale = rng.gamma(1.0, 2.0, size=n_genes)
    data = 1 + rng.poisson(scale[columns])
    return sp.csr_matrix((data.astype(np.int64), columns, indptr), shape=(n_cells, n_genes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    add_output_argument(parser, "impute_scale")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="impute_scale."))
    try:
        counts = synthetic_counts(args.cells, args.genes, args.density, seed=0)
        genes = pd.Index([f"G{i:05d}" for i in range(args.genes)])
        cells = pd.Index([f"C{i:07d}" for i in range(args.cells)])
        ad.AnnData(X=counts, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes)).write_h5ad(work / "in.h5ad")
        del counts
        command = [
            *(sys.executable, "-m", "scatlas.cli", "impute", "--method", "late", "--seed", "0"),
            *("--input", str(work / "in.h5ad"), "--output", str(work / "out.h5ad")),
            *("--param", f"max_epochs={args.epochs}", "--threads", str(args.threads)),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - started
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        history = pd.read_csv(work / "out.model" / "history.tsv", sep="\t")
        row = {
            "cells": args.cells,
            "genes": args.genes,
            "density": args.density,
            "epochs": len(history),
            "seconds": round(seconds, 1),
            "seconds_per_epoch": round(float(history["seconds"].iloc[-1]) / len(history), 1),  # cumulative column
            "peak_gib": round(peak_gib, 2),
            "output_gib": round((work / "out.h5ad").stat().st_size / 2**30, 2),
        }
        print(row, flush=True)
        path = result_path("impute_scale", args.output)
        previous = pd.read_csv(path, sep="\t") if path.exists() else pd.DataFrame()
        write_result("impute_scale", pd.concat([previous, pd.DataFrame([row])]), output=path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
