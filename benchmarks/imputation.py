"""Imputation benchmark (issue 38): LATE, TRANSLATE and the baselines and peers of ``scatlas impute-benchmark``
on the raw-count sets of ../shared/data/benchmarks, over seeds.

For every dataset × seed: hide 10 % of the non-zero counts, pick the 2000 most variable genes of the masked
counts, normalise to their median library size and take ln(1 + x) (scatlas.impute.benchmark), impute with
each method and score on the hidden entries. Writes one row per dataset × seed × method and a summary of
the means over seeds through benchmarks/results.py (results/<date>_<commit>/imputation*.tsv with the
environment beside); rows are written as they finish.

    python benchmarks/imputation.py [--datasets zeisel ...] [--seeds 0 1 2] [--methods late gene_mean ...]
        [--max-epochs 300] [--param learning_rate=0.001 ...] [--threads 1]

``--max-epochs`` caps LATE's epochs (its patience may stop it earlier); ``--param KEY=VALUE`` sets a LATE
parameter (a field of LateParams, read as YAML). ``--target-cells N``: TRANSLATE's small-target case — per seed
N random cells of the set are the target (masked and scored) and the other cells the reference TRANSLATE
pretrains on; the rows are named ``<dataset>[target N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import results_dir, write_result

from scatlas.impute.benchmark import benchmark
from scatlas.params import parse_assignment
from scatlas.preprocess.expression import CountRows, read_counts
from scatlas.registry import IMPUTATION

SHARED = Path(os.environ.get("SCATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BENCHMARKS = SHARED / "data" / "benchmarks"
DATASETS = ["zeisel", "pbmc4k_10x_top2000", "human_kidney_top2000", "baron_mouse", "mouse_bladder_2100"]
SCORES = ["mse_heldout", "pearson_heldout", "pearson_per_gene_median", "pearson_per_cell_median", "seconds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=[m for m in IMPUTATION.names() if m != "translate"])
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--n-top-genes", type=int, default=2000)
    parser.add_argument("--max-epochs", type=int, help="cap on LATE's epochs (default: LateParams')")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves a core free)")
    parser.add_argument("--target-cells", type=int, help="score on this many cells, the rest as reference")
    parser.add_argument("--name", default="imputation", help="result file name")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    late = dict(parse_assignment(p) for p in args.param)
    if args.max_epochs:
        late["max_epochs"] = args.max_epochs
    label = "[" + ",".join(f"{k}={v}" for k, v in late.items()) + "]" if late else ""
    folder = results_dir()
    rows = []
    for dataset in args.datasets:
        counts = read_counts(BENCHMARKS / f"{dataset}.h5ad")
        for seed in args.seeds:
            target, reference, name = counts, None, dataset
            if args.target_cells:
                target, reference = small_target(counts, args.target_cells, seed)
                name = f"{dataset}[target {args.target_cells}]"
            scores = benchmark(
                target,
                args.methods,
                args.holdout,
                seed,
                args.device,
                reference,
                {"late": late, "translate": late},
                args.n_top_genes,
            )
            for method, values in scores.items():
                method_name = method + label if method in ("late", "translate") else method
                rows.append({"dataset": name, "seed": seed, "method": method_name, **values})
                print(name, seed, method_name, " ".join(f"{k} {values[k]:.4f}" for k in SCORES), flush=True)
            table = pd.DataFrame(rows)
            write_result(args.name, table, folder)
            summary = table.groupby(["dataset", "method"], sort=False)[SCORES].mean().reset_index()
            write_result(f"{args.name}_summary", summary, folder)
    print(summary.to_string(index=False))


def small_target(counts: CountRows, n_cells: int, seed: int) -> tuple[CountRows, CountRows]:
    """``n_cells`` random cells of ``counts`` (the target) and the others (the reference)."""
    order = np.random.default_rng(seed).permutation(counts.shape[0])
    all_counts = counts.all()

    def part(index):
        index = np.sort(index)
        return CountRows(all_counts[index], counts.gene_names, counts.cell_names[index], counts.path)

    return part(order[:n_cells]), part(order[n_cells:])


if __name__ == "__main__":
    main()
