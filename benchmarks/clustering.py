"""Clustering benchmark: scDMAC, its ablations, scSMD and the baselines on the labelled raw-count sets.

For every selected dataset × method × seed: fit on ``X`` (raw counts) with k = number of labels,
score against ``obs['label']``, time the fit. Prints and writes (TSV) one row per run and a summary
of mean ± sd ARI / NMI and mean fit time per dataset × method, with the papers' published figures
beside (the benchmark files differ from the papers' versions of the sets: see the README of the
benchmark sets, ``$SCATLAS_SHARED/data/benchmarks/README.md``). The table is rewritten as each run
finishes, so a long run that is stopped keeps what it measured; the rows of an earlier run into the
same ``--output`` are kept.

    python benchmarks/clustering.py [--datasets zeisel baron_mouse] [--methods scdmac pca-kmeans]
        [--seeds 0 1 2 3 4] [--device auto] [--mixed-precision auto] [--param n_top_genes=2000 ...]
        [--output OUT.tsv]

Results: ``benchmarks/results/<date>_<commit>/clustering.tsv`` (default), ``clustering.summary.tsv``
and ``clustering.env.json`` beside it.

``--mixed-precision bfloat16`` runs the deep models' networks under bfloat16 autocast on the CPU too
(``Params.mixed_precision``); the rows are then named ``scdmac[bfloat16]`` etc. ``--param KEY=VALUE``
sets a deep model's parameter (a field of ScdmacParams / ScsmdParams, the value read as YAML), as
``scatlas cluster --config`` does; the rows are then named ``scdmac[n_top_genes=2000]`` etc. The issue's
timing, zeisel with 2000 highly variable genes (``--device cuda`` where there is a GPU):

    python benchmarks/clustering.py --datasets zeisel --methods scdmac --seeds 0 --param n_top_genes=2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, result_path, write_result

from scatlas.cluster import cluster_counts
from scatlas.cluster.data import read_counts
from scatlas.evaluate import clustering_scores
from scatlas.io import read_h5ad
from scatlas.models.base import PRECISIONS
from scatlas.params import parse_assignment
from scatlas.registry import CLUSTERING

SHARED = Path(os.environ.get("SCATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BENCHMARKS = SHARED / "data" / "benchmarks"
# every labelled set with raw integer counts (pollen_simlr_249 holds log values: left out)
DATASETS = [
    "zeisel",
    "baron_mouse",
    "pbmc4k_10x_top2000",
    "mouse_bladder_2100",
    "human_kidney_top2000",
    "deng_subset_133",
    "pollen_scde_64",
    "romanov_neurons_845",
    "pbmc_ifnb_kang_2800",
    "cite_cbmc_top2000",
    "mouse_bladder_top2000",
]
# the ablations of the scDMAC paper's Table 5: row name → parameters. The defaults leave the paper's denoising and
# augmentations off (see ScdmacParams): "scdmac-full" is the paper's whole model, "+Z" adds the
# denoising alone, "+A" the augmentations alone.
PAPER_AUGMENTATIONS = {"gene_zero_rate": 0.1, "noise_variance": 0.6, "neighbour_swap_rate": 0.2}
ABLATIONS = {
    "scdmac": {
        "scdmac-full": {"denoise": True, **PAPER_AUGMENTATIONS},
        "scdmac+Z": {"denoise": True},
        "scdmac+A": PAPER_AUGMENTATIONS,
        "scdmac-W": {"weighted_reconstruction": False},
        "scdmac-P": {"mask_predictor": False},
    }
}
# row name → (clustering method, parameters): every method of the registry, each followed by its ablations
METHODS = {
    row: (method, params)
    for method in CLUSTERING.names()
    for row, params in {method: {}, **ABLATIONS.get(method, {})}.items()
}
# published ARI / NMI on the papers' versions of these sets (scDMAC: Table 2 and Table 5; scSMD: Tables 2–3)
PUBLISHED = {
    ("zeisel", "scdmac"): "paper Zeisel has 12 types, 7 here",
    ("zeisel", "scdmac-full"): "scDMAC ARI 0.7983 NMI 0.7692",
    ("zeisel", "scdmac+A"): "scDMAC-Z ARI 0.7694 NMI 0.7413 (no denoising)",
    ("zeisel", "scdmac-W"): "scDMAC-W ARI 0.7912 NMI 0.7624",
    ("zeisel", "scdmac-P"): "scDMAC-P ARI 0.7881 NMI 0.7589",
    ("zeisel", "pca-kmeans"): "paper PCA+K-means ARI 0.4732",
    ("deng_subset_133", "scdmac"): "scDMAC ARI 0.8896 NMI 0.8802 (Deng, 268 cells / 6 types; 133 / 5 here)",
    ("deng_subset_133", "pca-kmeans"): "paper PCA+K-means ARI 0.6013",
    ("pollen_scde_64", "scdmac"): "scDMAC ARI 0.9151 (Pollen, 301 cells / 11 types; 64 / 4 here)",
    ("baron_mouse", "scdmac"): "scSMD (Baron) ARI 0.724 NMI 0.798",
    ("pbmc4k_10x_top2000", "scdmac"): "scSMD (PBMC) ARI 0.852 NMI 0.824",
    ("zeisel", "scsmd"): "scSMD ARI 0.803 NMI 0.755 (paper Zeisel has 12 types, 7 here)",
    ("baron_mouse", "scsmd"): "scSMD (Baron) ARI 0.724 NMI 0.798",
    ("pbmc4k_10x_top2000", "scsmd"): "scSMD (PBMC) ARI 0.852 NMI 0.824",
}


def parameter(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value read as YAML), as ``scatlas impute --param`` reads it."""
    try:
        return parse_assignment(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--mixed-precision", default="auto", choices=list(PRECISIONS))
    parser.add_argument(
        "--param",
        nargs="+",
        type=parameter,
        default=[],
        metavar="KEY=VALUE",
        help="a field of ScdmacParams / ScsmdParams, e.g. n_top_genes=2000",
    )
    add_output_argument(parser, "clustering")
    args = parser.parse_args()
    output = result_path("clustering", args.output)
    rows = pd.read_csv(output, sep="\t").to_dict("records") if output.exists() else []
    print(f"cpus: {os.cpu_count()}  torch threads: {torch.get_num_threads()}  cuda: {torch.cuda.is_available()}")
    for dataset in args.datasets:
        path = BENCHMARKS / f"{dataset}.h5ad"
        matrix = read_counts(path)
        truth = read_h5ad(path, backed="r").obs["label"].astype(str).to_numpy()[matrix.cell_index]
        k = len(np.unique(truth))
        for name in args.methods:
            method, params = METHODS[name]
            deep = CLUSTERING.method(method).kind == "deep"
            if deep and args.mixed_precision != "auto":
                params, name = {**params, "mixed_precision": args.mixed_precision}, f"{name}[{args.mixed_precision}]"
            if deep and args.param:
                params = {**params, **dict(args.param)}
                name += "[" + ",".join(f"{key}={value}" for key, value in args.param) + "]"
            for seed in args.seeds:
                started = time.perf_counter()
                labels, embedding = cluster_counts(
                    method, matrix.counts, k, seed=seed, device=args.device, params=params
                )
                seconds = time.perf_counter() - started
                scores = clustering_scores(truth, labels, embedding, seed=seed)
                row = {
                    "dataset": dataset,
                    "method": name,
                    "seed": seed,
                    "k": k,
                    "n_cells": scores["n_cells"],
                    "ari": scores["ari"],
                    "nmi": scores["nmi"],
                    "acc": scores["acc"],
                    "silhouette": scores["silhouette"],
                    "fit_seconds": seconds,
                }
                rows.append(row)
                write_result("clustering", pd.DataFrame(rows), output=output, float_format="%.4f")
                print("\t".join(str(round(v, 4) if isinstance(v, float) else v) for v in row.values()), flush=True)
    summarize(output)
    return 0


def summarize(path: Path) -> pd.DataFrame:
    """Mean ± sd of ARI and NMI and mean fit time per dataset × method, with the published figures."""
    runs = pd.read_csv(path, sep="\t")
    summary = runs.groupby(["dataset", "method"], sort=False).agg(
        n_seeds=("seed", "nunique"),
        ari_mean=("ari", "mean"),
        ari_sd=("ari", "std"),
        nmi_mean=("nmi", "mean"),
        nmi_sd=("nmi", "std"),
        fit_seconds=("fit_seconds", "mean"),
    )
    summary["published"] = [PUBLISHED.get(index, "") for index in summary.index]
    summary = summary.reset_index()
    write_result(
        "clustering", summary, output=path.with_name(path.stem + ".summary.tsv"), env=False, float_format="%.4f"
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return summary


if __name__ == "__main__":
    sys.exit(main())
