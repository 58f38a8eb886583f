"""Merge synthetic studies into one atlas: wall time and peak memory of ``merge_studies``.

Default: 10 studies × 20 000 cells = 200 000 cells × 20 000 genes, ≈ 5 % non-zero (negative
binomial-like counts), each study written as the quantify stage writes it (layer ``counts`` int64,
X float32), one study missing 500 genes so that the common gene set is a real intersection.
The merge runs in a child process; its peak resident memory is the child's ``ru_maxrss``.

    nice -n 10 .venv/bin/python benchmarks/atlas_merge.py [--studies 10] [--cells 20000] [--genes 20000]
        [--output OUT.tsv]

Results: ``benchmarks/results/<date>_<commit>/atlas_merge.tsv`` (default): one row per run;
``atlas_merge.env.json`` beside it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, write_result


def write_study(path: Path, study: str, n_cells: int, genes: pd.Index, density: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    # uniform non-zero positions (sorted, unique: row-major order is CSR order)
    flat = np.unique(rng.integers(0, n_cells * len(genes), size=int(density * n_cells * len(genes))))
    rows, columns = np.divmod(flat, len(genes))
    indptr = np.searchsorted(rows, np.arange(n_cells + 1))
    data = 1 + rng.negative_binomial(1, 0.3, size=len(flat))
    counts = sp.csr_matrix((data.astype(np.int64), columns.astype(np.int32), indptr), shape=(n_cells, len(genes)))
    runs = [f"{study}_R{i:06d}" for i in range(n_cells)]
    obs = pd.DataFrame({"study": study, "sample": [f"{r}_S" for r in runs], "run": runs}, index=runs)
    adata = ad.AnnData(X=counts.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes), layers={"counts": counts})
    adata.write_h5ad(path)
    return counts.nnz


def merge(files: dict, labels: list, output: Path, compression: str | None, result) -> None:
    from scatlas.atlas import merge_studies

    start = time.perf_counter()
    shape = merge_studies(files, labels, output, compression=compression)
    result.put((shape, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--cells", type=int, default=20_000, help="cells per study")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--compression", default="gzip", help="atlas compression (gzip, lzf or none)")
    parser.add_argument("--workdir", default=None, help="where the studies are written (default: a temp dir)")
    add_output_argument(parser, "atlas_merge")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="atlas_merge_"))
    genes = pd.Index([f"G{i:05d}" for i in range(args.genes)])
    files, nnz, start = {}, 0, time.perf_counter()
    for number in range(args.studies):
        study = f"S{number:02d}"
        study_genes = genes[500:] if number == 1 else genes
        files[study] = workdir / f"{study}.h5ad"
        nnz += write_study(files[study], study, args.cells, study_genes, args.density, seed=number)
    written = sum(f.stat().st_size for f in files.values()) / 2**30
    write_seconds = time.perf_counter() - start
    print(
        f"inputs: {args.studies} studies, {args.studies * args.cells} cells x {args.genes} genes, {nnz:,} non-zero "
        f"({nnz / (args.studies * args.cells * args.genes):.1%}), {written:.2f} GiB, written in "
        f"{write_seconds:.0f} s"
    )
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    compression = None if args.compression == "none" else args.compression
    child = context.Process(target=merge, args=(files, [], workdir / "atlas.h5ad", compression, result))
    child.start()
    (n_cells, n_genes), wall, peak_kib = result.get()
    child.join()
    size = (workdir / "atlas.h5ad").stat().st_size / 2**30
    print(
        f"merge_studies: {n_cells} cells x {n_genes} genes in {wall:.1f} s wall, peak RSS {peak_kib / 2**20:.2f} GiB "
        f"(goal <= 4 GB); atlas {size:.2f} GiB ({args.compression})"
    )
    row = {
        "studies": args.studies,
        "cells_per_study": args.cells,
        "genes": args.genes,
        "density": args.density,
        "nonzero": nnz,
        "inputs_gib": written,
        "inputs_write_seconds": write_seconds,
        "atlas_cells": n_cells,
        "atlas_genes": n_genes,
        "compression": args.compression,
        "merge_seconds": wall,
        "peak_rss_gib": peak_kib / 2**20,
        "atlas_gib": size,
    }
    write_result("atlas_merge", pd.DataFrame([row]), output=args.output, float_format="%.3f")
    if not args.workdir:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
