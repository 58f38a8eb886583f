"""Label-free guard study (issue 42): on every labelled raw-count set with ≥ 200 cells, fit a deep model with
its defaults, fit PCA + K-means, and record beside the ARIs the label-free statistics a guard could read.

Per dataset × method × seed, one row: the deep partition's and PCA + K-means' ARI / NMI against the labels,
and the statistics of :func:`scatlas.cluster.guard.guard_statistics` (the members' agreement with each
other, the PCA partition's stability over K-means seeds, the agreement of the two, and each partition's
silhouette in both embeddings). The members' partitions, the PCA partitions and the labels are kept in
``cluster_guard.partitions.npz`` beside the table, so guard rules can be compared without refitting.

    python benchmarks/cluster_guard.py [--datasets zeisel ...] [--methods scdmac scsmd] [--seeds 0]

Results: ``benchmarks/results/<date>_<commit>/cluster_guard.tsv`` with ``cluster_guard.env.json`` beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clustering
from results import results_dir, write_result

from scatlas.cluster.baselines import PcaKmeansParams, pca_embedding
from scatlas.cluster.data import read_counts
from scatlas.cluster.guard import guard_statistics, pca_partitions
from scatlas.evaluate import clustering_scores
from scatlas.io import read_h5ad
from scatlas.registry import CLUSTERING

# every labelled set of raw counts with at least 200 cells (clustering.py's list less deng and pollen)
DATASETS = [name for name in clustering.DATASETS if name not in ("deng_subset_133", "pollen_scde_64")]


def deep_members(method: str, counts, k: int, seed: int, gene_names) -> tuple[np.ndarray, np.ndarray, list]:
    """(labels, embedding, members' label vectors) of a deep method with its defaults."""
    entry = CLUSTERING.method(method)
    params = entry.parameters({})
    if method == "scdmac":
        from scatlas.models.scdmac import fit_ensemble

        labels, embedding, members = fit_ensemble(counts, k, params, seed, "cpu", gene_names)
        return labels, embedding, [m.labels_ for m in members]
    labels, embedding = entry.fit_function()(counts, k, params, seed, "cpu", gene_names)
    return labels, embedding, [labels]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--methods", nargs="+", default=["scdmac"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = results_dir()
    rows, arrays = [], {}
    for dataset in args.datasets:
        path = clustering.BENCHMARKS / f"{dataset}.h5ad"
        matrix = read_counts(path)
        truth = read_h5ad(path, backed="r").obs["label"].astype(str).to_numpy()[matrix.cell_index]
        k = len(np.unique(truth))
        pca_params = PcaKmeansParams()
        pca = pca_embedding(matrix.counts, pca_params.n_top_genes, pca_params.n_comps, 0)
        pcas = pca_partitions(pca, k, seeds=(0, 1, 2), n_init=pca_params.n_init)
        arrays[f"{dataset}/truth"] = truth
        for i, labels in enumerate(pcas):
            arrays[f"{dataset}/pca{i}"] = labels
        for method in args.methods:
            for seed in args.seeds:
                started = time.perf_counter()
                labels, embedding, members = deep_members(method, matrix.counts, k, seed, matrix.gene_names)
                seconds = time.perf_counter() - started
                stats = guard_statistics(members, labels, embedding, pcas, pca, seed)
                deep = clustering_scores(truth, labels, None, seed=seed)
                base = clustering_scores(truth, pcas[0], None, seed=seed)
                row = {
                    "dataset": dataset,
                    "method": method,
                    "seed": seed,
                    "n_cells": len(truth),
                    "k": k,
                    "ari_deep": deep["ari"],
                    "nmi_deep": deep["nmi"],
                    "ari_pca": base["ari"],
                    "nmi_pca": base["nmi"],
                    **stats,
                    "seconds": round(seconds, 1),
                }
                rows.append(row)
                print(
                    " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True
                )
                arrays[f"{dataset}/{method}/seed{seed}/labels"] = labels
                for i, member in enumerate(members):
                    arrays[f"{dataset}/{method}/seed{seed}/member{i}"] = member
                write_result("cluster_guard", pd.DataFrame(rows), folder)
                np.savez_compressed(folder / "cluster_guard.partitions.npz", **arrays)


if __name__ == "__main__":
    main()
