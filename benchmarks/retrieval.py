"""Mapping held-out cells onto a supervised embedding: every model variant against PCA-100 + kNN on real
cross-condition and cross-donor splits of ``../shared/data/benchmarks``.

Splits: kang (pbmc_ifnb_kang_2800) CTRL → STIM, baron_mouse mouse1 → mouse2 and mouse2 → mouse1. Training
cells: the training side's cells of types with at least ``--min-cells`` cells there; query cells: the other
side's cells of those types. Scores (scatlas.embed.metrics): accuracy and macro-F1 of the predicted type
(embeddings: the top type of the 1/(1 + D) similarity over the 100 nearest training cells in the HNSW index;
PCA: the majority of the 15 nearest), MAP and MAFP (Cell Ontology relevance) at scQuery's depth R.
CellTypist (``--models celltypist``: trained on the same training cells, with its feature selection) runs in
the peers' environment (``make peers``: ``benchmarks/peers-requirements.txt``) and gives predictions only.

    python benchmarks/retrieval.py [--splits kang baron12 baron21]
        [--models dense pt-dense siamese triplet pca celltypist] [--seeds 0 1 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, write_result

from scatlas.embed.baselines import pca_knn
from scatlas.embed.metrics import RETRIEVAL_LIMIT, classification_scores, mapping_scores
from scatlas.models.embed import Embedder, EmbedParams
from scatlas.ontology import load_ontology

SHARED = Path(os.environ.get("SCATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BENCHMARKS = SHARED / "data" / "benchmarks"
PEERS_PYTHON = Path(__file__).resolve().parents[1] / ".venv-peers" / "bin" / "python"
ONTOLOGY = SHARED / "data" / "ontology" / "cl-basic_2022-12-15.obo"
# Cell Ontology term names of kang's Seurat labels (curated here; baron_mouse ships obs.cell_ontology_class).
# "B Activated" has no CL term of its own in this release: B cell; "T activated" are activated CD4 T cells.
KANG_TERMS = {
    "B": "B cell",
    "B Activated": "B cell",
    "CD14 Mono": "CD14-positive monocyte",
    "CD16 Mono": "CD14-low, CD16-positive monocyte",
    "CD4 Memory T": "CD4-positive, alpha-beta memory T cell",
    "CD4 Naive T": "naive thymus-derived CD4-positive, alpha-beta T cell",
    "CD8 T": "CD8-positive, alpha-beta T cell",
    "DC": "dendritic cell",
    "Eryth": "erythrocyte",
    "Mk": "megakaryocyte",
    "NK": "natural killer cell",
    "T activated": "activated CD4-positive, alpha-beta T cell",
    "pDC": "plasmacytoid dendritic cell",
}
SPLITS = {
    "kang": ("pbmc_ifnb_kang_2800.h5ad", "condition", "CTRL", "STIM"),
    "baron12": ("baron_mouse.h5ad", "donor", "mouse1", "mouse2"),
    "baron21": ("baron_mouse.h5ad", "donor", "mouse2", "mouse1"),
}
MODELS = {
    "dense": {"model": "dense"},
    "pt-dense": {"model": "dense", "pretrain": True},
    "siamese": {"model": "siamese", "epochs": 10},  # 30k pairs an epoch: a third of the epochs
    "triplet": {"model": "triplet"},
}


def load_split(name: str, min_cells: int):
    """(training AnnData, query AnnData, label → CL term name) of a split."""
    file, key, train_side, query_side = SPLITS[name]
    adata = ad.read_h5ad(BENCHMARKS / file)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    labels = adata.obs["label"].astype(str)
    if "cell_ontology_class" in adata.obs:
        terms = dict(zip(labels, adata.obs["cell_ontology_class"].astype(str), strict=True))
    else:
        terms = KANG_TERMS
    train = adata[(adata.obs[key] == train_side).to_numpy()].copy()
    counts = train.obs["label"].astype(str).value_counts()
    kept = counts.index[counts >= min_cells]
    train = train[train.obs["label"].astype(str).isin(kept).to_numpy()].copy()
    query = adata[((adata.obs[key] == query_side) & labels.isin(kept)).to_numpy()].copy()
    return train, query, terms


def celltypist_predictions(train, query, seed: int, threads: int, python: Path) -> np.ndarray:
    """CellTypist's predicted type of every query cell (benchmarks/celltypist_peer.py in the peers' venv),
    both sides as CellTypist expects them: ln(1 + CP10k) of every gene."""
    from scatlas.preprocess.normalize import log_normalize

    with tempfile.TemporaryDirectory() as tmp:
        for name, adata in (("train", train), ("query", query)):
            obs, var = adata.obs[["label"]].copy(), pd.DataFrame(index=adata.var_names)
            ad.AnnData(log_normalize(adata.X), obs=obs, var=var).write_h5ad(Path(tmp) / f"{name}.h5ad")
        out = Path(tmp) / "predicted.tsv"
        peer = Path(__file__).resolve().parent / "celltypist_peer.py"
        cmd = [str(python), str(peer), f"{tmp}/train.h5ad", f"{tmp}/query.h5ad", str(out)]
        subprocess.run([*cmd, "--seed", str(seed), "--threads", str(threads)], check=True)
        predicted = pd.read_csv(out, sep="\t", dtype=str).set_index("cell")["predicted"]
    return predicted.reindex(query.obs_names).to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs="+", choices=sorted(SPLITS), default=list(SPLITS))
    parser.add_argument("--models", nargs="+", choices=[*MODELS, "pca", "celltypist"], default=[*MODELS, "pca"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--min-cells", type=int, default=20, help="training cells a type needs (issue 39's table: 20)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every model (default: EmbedParams')")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="an EmbedParams field")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (small networks: 1 is fastest on a loaded CPU)"
    )
    parser.add_argument(
        "--peers-python", type=Path, default=PEERS_PYTHON, help="the interpreter with CellTypist (`make peers`)"
    )
    add_output_argument(parser, "retrieval")
    args = parser.parse_args()
    from scatlas.params import parse_assignment

    torch.set_num_threads(args.threads)
    extra = dict(parse_assignment(item) for item in args.param)
    if args.epochs:
        extra["epochs"] = args.epochs
    ontology = load_ontology(ONTOLOGY)
    by_name = {term.name: term_id for term_id, term in ontology.terms.items()}
    rows = []
    for split in args.splits:
        train, query, term_names = load_split(split, args.min_cells)
        train_labels = train.obs["label"].astype(str).to_numpy()
        truth = query.obs["label"].astype(str).to_numpy()
        types = sorted(set(train_labels))
        terms = [by_name.get(term_names.get(t, ""), "") for t in types]
        codes = np.searchsorted(types, train_labels)
        for model in args.models:
            for seed in args.seeds:
                started = time.perf_counter()
                if model == "celltypist":
                    predicted = celltypist_predictions(train, query, seed, args.threads, args.peers_python)
                elif model == "pca":
                    predicted, ranked, _ = pca_knn(train.X, train_labels, query.X, seed=seed)
                else:
                    params = EmbedParams.from_dict({**MODELS[model], **extra})
                    embedder = Embedder(params, seed, "cpu").fit(train.X, train.var_names, train_labels)
                    _, similarity, found, _ = embedder.query(
                        query.X, query.var_names, threads=args.threads, depth=RETRIEVAL_LIMIT
                    )
                    predicted = np.asarray(embedder.types, dtype=object)[similarity.argmax(axis=1)]
                    ranked = codes[found]
                seconds = time.perf_counter() - started
                if model == "celltypist":  # a classifier: no ranked neighbours to score
                    scores = classification_scores(truth, predicted)
                else:
                    scores = mapping_scores(truth, predicted, types, ranked, codes, terms, ontology)
                row = {
                    "split": split,
                    "model": model,
                    "seed": seed,
                    "n_train": len(train_labels),
                    "n_query": len(truth),
                    "n_types": len(types),
                    "seconds": round(seconds, 1),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
                }
                print(row, flush=True)
                rows.append(row)
    table = pd.DataFrame(rows)
    path = write_result("retrieval", table, output=args.output)
    figures = [name for name in ("accuracy", "macro_f1", "map", "mafp", "mafp_unweighted") if name in table]
    print(table.groupby(["split", "model"])[figures].mean().round(3).to_string())
    print(path)


if __name__ == "__main__":
    main()
