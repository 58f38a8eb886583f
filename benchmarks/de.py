"""DE accuracy on simulated truth and SCDE speed; prints the figures of the issue note.

Counts from scatlas.de.simulate (NB with drop-outs, 3 studies with batch effects, 3 cell types,
known DE genes). For each method: AUC (|truth| != 0 vs the evidence) and precision/recall at FDR 0.05
of type_0 against the other types, per single study (mean over studies) and after the meta-analysis.
Speed: one SCDE test, 150 cells (75 vs 75) x 20 000 genes. Run with ``nice -n 10``.
"""

import argparse
import json
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from scatlas.de import DEParams, combine_studies, differential_expression
from scatlas.de.scde import scde_test
from scatlas.de.simulate import simulate_de


def scores(table, truth):
    """AUC of -log10 p (0 when the signs disagree across studies), precision and recall of 'significant'."""
    table = table.set_index("gene").reindex(truth.index)
    evidence = -np.log10(np.maximum(table["p_adj_max"].to_numpy(), 1e-300))
    same_sign = np.sign(table["log2fc"]) == np.sign(table["z"])
    evidence = np.where(same_sign, evidence, 0.0)
    de = truth.to_numpy() != 0
    called = table["significant"].to_numpy()
    right_sign = np.sign(table["log2fc"].to_numpy()) == np.sign(truth.to_numpy())
    hits = called & de & right_sign
    return {"auc": roc_auc_score(de, evidence), "precision": hits.sum() / max(called.sum(), 1),
            "recall": hits.sum() / de.sum(), "n_called": int(called.sum())}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--speed-genes", type=int, default=20000)
    parser.add_argument("--methods", nargs="*", default=["scde", "wilcoxon", "pydeseq2"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    adata = simulate_de(n_studies=3, n_types=3, cells_per_type=100, n_genes=args.genes, n_de=100, seed=args.seed)
    # Genes DE only in another type differ between type_0 and "the others" too, by a diluted amount;
    # they are neither clear positives nor clear negatives and are left out of the scores.
    others_de = (adata.var[["log2fc_type_1", "log2fc_type_2"]] != 0).any(axis=1)
    truth = adata.var["log2fc_type_0"][(adata.var["log2fc_type_0"] != 0) | ~others_de]
    results = {}
    for method in args.methods:
        start = time.perf_counter()
        per_study = {}
        for study in sorted(set(adata.obs["study"])):
            one = adata[adata.obs["study"] == study]
            tables, _ = differential_expression(one, "label", "study", DEParams(method=method, seed=args.seed))
            per_study[study] = tables["type_0"].set_index("gene").rename(columns={"p_adj_max": "p_adj"})
        single = [scores(t.reset_index().rename(columns={"p_adj": "p_adj_max"}), truth) for t in per_study.values()]
        meta = scores(combine_studies(per_study, 0.05), truth)
        results[method] = {"single_study_mean": {k: float(np.mean([s[k] for s in single])) for k in single[0]},
                           "meta": meta, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print(json.dumps({method: results[method]}), flush=True)
    speed = simulate_de(n_studies=1, n_types=2, cells_per_type=75, n_genes=args.speed_genes, n_de=500, seed=1)
    counts = speed.X.toarray()
    first, second = counts[speed.obs["label"] == "type_0"], counts[speed.obs["label"] == "type_1"]
    start = time.perf_counter()
    scde_test(first, second, seed=0)
    print(json.dumps({"scde_speed": {"cells": 150, "genes": args.speed_genes,
                                     "seconds": round(time.perf_counter() - start, 1)}}))  # fmt: skip


if __name__ == "__main__":
    main()
