"""DE accuracy on simulated truth and SCDE speed.

Counts from scatlas.de.simulate (NB with drop-outs, 3 studies with batch effects, 3 cell types,
known DE genes). For each method, type_0 is tested against the other types, per single study (mean
over the studies) and after the meta-analysis (scatlas.de.combine_studies). Positives are the genes
with a true fold change for type_0, negatives the null genes (genes DE only in another type are left
out). Figures:

- ``auc``: ROC AUC of the genes ranked by -log10 ``p_adj_max`` (single study: the study's adjusted
  p). BH gives many genes the same adjusted p and SCDE's conservative Z puts most genes at exactly 1,
  so this AUC is then 0.5 + half the share of DE genes with ``p_adj_max`` < 1, whatever the order of
  the rest (tied pairs count 1/2).
- ``auc_z``: ROC AUC of the genes ranked by |z|, the method's uncorrected statistic (single study:
  the study's z; meta-analysis: combine_studies' z, the weakest study's z when every study's z has
  the same sign, else 0). ROC curves are drawn from a continuous statistic; this one breaks the
  ties of ``auc`` (it can be lower: most missed DE genes have no counts at all, z = 0 exactly, while
  null genes with counts have a little noise).
- In both, the evidence counts 0 where z is 0 (after the meta-analysis: the studies disagree in
  direction) or where z and log2fc have opposite signs. A log2fc of exactly 0 is no disagreement:
  SCDE's log2fc is the posterior mode, which is exactly 0 for many genes.
- ``precision`` / ``recall``: of the genes called ``significant`` (FDR 0.05; meta-analysis: also the
  same sign in every study), those truly DE with the right sign.

Each figure is printed per simulation seed (``--seeds``, default 0–4) and as the mean over them (the
simulations differ much from seed to seed: compare means).

Speed: one SCDE test, 150 cells (75 vs 75) x 20 000 genes, wall and CPU seconds with the load
average. Run with ``nice -n 10`` and ``OMP_NUM_THREADS=1``.

Results: ``benchmarks/results/<date>_<commit>/de.tsv`` (default; ``--output``): one row per seed ×
method × scope (``single_study_mean``, ``meta``); ``de.speed.tsv`` and ``de.env.json`` beside it.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, result_path, write_result

from scatlas.de import DEParams, combine_studies, differential_expression
from scatlas.de.scde import scde_test
from scatlas.de.simulate import simulate_de


def scores(table, truth):
    """AUC of -log10 p_adj_max and of |z| (0 when z is 0 or z and log2fc have opposite signs),
    precision and recall of 'significant'."""
    table = table.set_index("gene").reindex(truth.index)
    # A fold change of exactly 0 (SCDE's posterior mode) contradicts nothing; a z of 0 is no evidence
    # (meta-analysis: the studies disagree in direction).
    same_sign = (table["z"] != 0) & (np.sign(table["log2fc"]) * np.sign(table["z"]) >= 0)
    evidence = np.where(same_sign, -np.log10(np.maximum(table["p_adj_max"].to_numpy(), 1e-300)), 0.0)
    statistic = np.where(same_sign, table["z"].abs().to_numpy(), 0.0)
    de = truth.to_numpy() != 0
    called = table["significant"].to_numpy()
    right_sign = np.sign(table["log2fc"].to_numpy()) == np.sign(truth.to_numpy())
    hits = called & de & right_sign
    return {
        "auc": roc_auc_score(de, evidence),
        "auc_z": roc_auc_score(de, statistic),
        "precision": hits.sum() / max(called.sum(), 1),
        "recall": hits.sum() / de.sum(),
        "n_called": int(called.sum()),
    }


def accuracy(seed: int, methods, n_genes: int, n_bootstrap: int) -> dict:
    """Scores of each method on one simulated data set: per study (mean) and after the meta-analysis."""
    adata = simulate_de(n_studies=3, n_types=3, cells_per_type=100, n_genes=n_genes, n_de=100, seed=seed)
    # Genes DE only in another type differ between type_0 and "the others" too, by a diluted amount;
    # they are neither clear positives nor clear negatives and are left out of the scores.
    others_de = (adata.var[["log2fc_type_1", "log2fc_type_2"]] != 0).any(axis=1)
    truth = adata.var["log2fc_type_0"][(adata.var["log2fc_type_0"] != 0) | ~others_de]
    results = {}
    for method in methods:
        start = time.perf_counter()
        per_study = {}
        for study in sorted(set(adata.obs["study"])):
            one = adata[adata.obs["study"] == study]
            params = DEParams(method=method, seed=seed, n_bootstrap=n_bootstrap)
            tables, _ = differential_expression(one, "label", "study", params)
            per_study[study] = tables["type_0"].set_index("gene").rename(columns={"p_adj_max": "p_adj"})
        single = [scores(t.reset_index().rename(columns={"p_adj": "p_adj_max"}), truth) for t in per_study.values()]
        meta = scores(combine_studies(per_study, 0.05), truth)
        results[method] = {
            "single_study_mean": {k: float(np.mean([s[k] for s in single])) for k in single[0]},
            "meta": meta,
            "seconds": round(time.perf_counter() - start, 1),
        }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--speed-genes", type=int, default=20000)
    parser.add_argument("--methods", nargs="*", default=["scde", "wilcoxon", "pydeseq2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="simulation seeds")
    parser.add_argument("--n-bootstrap", type=int, default=150, help="SCDE bootstrap resamples (SCDE's default 150)")
    # One torch thread by default: on a shared machine each large operation otherwise waits for the
    # slower of two threads, and the test takes 1.5x longer than with one.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_output_argument(parser, "de")
    args = parser.parse_args()
    output = result_path("de", args.output)
    torch.set_num_threads(args.threads)
    results = {method: [] for method in args.methods}
    rows = []
    for seed in args.seeds:
        for method, result in accuracy(seed, args.methods, args.genes, args.n_bootstrap).items():
            print(json.dumps({"seed": seed, method: result}), flush=True)
            results[method].append(result)
            for scope in ("single_study_mean", "meta"):
                rows.append(
                    {"seed": seed, "method": method, "scope": scope, **result[scope], "seconds": result["seconds"]}
                )
        write_result("de", pd.DataFrame(rows), output=output, float_format="%.4f")  # a stopped run keeps its seeds
    for method, runs in results.items():
        mean = {
            part: {k: round(float(np.mean([run[part][k] for run in runs])), 3) for k in runs[0][part]}
            for part in ("single_study_mean", "meta")
        }
        sd = {
            part: round(float(np.std([run[part]["auc_z"] for run in runs])), 3)
            for part in ("single_study_mean", "meta")
        }
        print(json.dumps({"mean_over_seeds": args.seeds, method: mean, "auc_z_sd": sd}), flush=True)
    speed = simulate_de(n_studies=1, n_types=2, cells_per_type=75, n_genes=args.speed_genes, n_de=500, seed=1)
    counts = speed.X.toarray()
    first, second = counts[speed.obs["label"] == "type_0"], counts[speed.obs["label"] == "type_1"]
    start, cpu = time.perf_counter(), time.process_time()
    scde_test(first, second, seed=0, n_bootstrap=args.n_bootstrap)
    speed_row = {
        "cells": 150,
        "genes": args.speed_genes,
        "threads": args.threads,
        "n_bootstrap": args.n_bootstrap,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps({"scde_speed": speed_row}))
    write_result("de", pd.DataFrame([speed_row]), output=output.with_name(f"{output.stem}.speed.tsv"), env=False)


if __name__ == "__main__":
    main()
