"""CellTypist as a peer of the embeddings (benchmarks/retrieval.py runs it in its own environment).

Trains CellTypist's logistic regression with its feature selection on TRAIN.h5ad (``X``: ln(1 + CP10k) of
every gene, ``obs['label']``) and writes the majority-voting-free prediction of every QUERY.h5ad cell as a
TSV (``cell``, ``predicted``). CellTypist 1.7 passes ``multi_class`` to scikit-learn, which 1.8 removed, so
it runs with the interpreter of ``benchmarks/peers-requirements.txt`` (``make peers``), not the project's.

    .venv-peers/bin/python benchmarks/celltypist_peer.py TRAIN.h5ad QUERY.h5ad OUT.tsv [--seed S] [--threads N]
"""

from __future__ import annotations

import argparse
import random

import anndata as ad
import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train")
    parser.add_argument("query")
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import celltypist

    random.seed(args.seed)
    np.random.seed(args.seed)  # CellTypist's SGD and sampling draw from numpy's global state
    train, query = ad.read_h5ad(args.train), ad.read_h5ad(args.query)
    model = celltypist.train(train, labels="label", feature_selection=True, n_jobs=args.threads, check_expression=True)
    predictions = celltypist.annotate(query, model=model, majority_voting=False)
    labels = predictions.predicted_labels["predicted_labels"].astype(str)
    pd.DataFrame({"cell": query.obs_names, "predicted": labels.to_numpy()}).to_csv(args.output, sep="\t", index=False)


if __name__ == "__main__":
    main()
