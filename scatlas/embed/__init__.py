"""Supervised embeddings of atlas cells and the mapping of new cells onto them (scQuery; SPEC 2.4): the split
by study, training (:mod:`scatlas.models.embed`), query, ``scatlas map`` and the query-set scores."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd

from scatlas.embed.metrics import RETRIEVAL_LIMIT, mapping_scores
from scatlas.embed.similarity import nearest_studies, predictions_table
from scatlas.embed.split import TooFewCells, eligible_cells, single_labels, study_split
from scatlas.io import InputError, atomic_output, raw_counts, read_h5ad

log = logging.getLogger(__name__)

SPLIT_FILE = "split.tsv"
HOLDOUTS = ("study", "none")


def _obs_column(adata, key: str, path) -> pd.Series:
    if key not in adata.obs:
        raise InputError(
            path, f"obs has no column {key!r} (columns: {', '.join(map(str, adata.obs.columns)) or 'none'})"
        )
    return adata.obs[key]


def _type_terms(adata, labels: pd.Series, term_key: str | None) -> dict:
    """Label → its most frequent term id in obs[term_key] (none without the column)."""
    if not term_key or term_key not in adata.obs:
        return {}
    terms = adata.obs[term_key].astype(str).to_numpy()
    table = pd.DataFrame({"label": labels.to_numpy(), "term": terms}).dropna()
    return table.groupby("label")["term"].agg(lambda t: t.value_counts().index[0]).to_dict()


def train_embedding(
    input: str | os.PathLike,
    output: str | os.PathLike,
    label_key: str,
    study_key: str,
    model: str,
    min_cells: int,
    seed: int = 0,
    device: str = "auto",
    params: dict | None = None,
    pretrain: bool | None = None,
    holdout: str = "study",
    ontology: str | os.PathLike | None = None,
    term_key: str | None = None,
    threads: int | None = None,
    metrics: str | os.PathLike | None = None,
    predictions: str | os.PathLike | None = None,
):
    """Train an embedding on the h5ad's training cells and save it (with its index and split) to ``output``.

    Cells whose only label (obs[label_key]) has ≥ ``min_cells`` cells are used; ``holdout`` ``study`` holds
    whole studies (obs[study_key]) out as the query set (:func:`scatlas.embed.split.study_split`), ``none``
    trains on every such cell. ``ontology`` (a Cell Ontology file) and ``term_key`` (the obs column of the
    labels' term ids) give MAFP and the siamese dynamic margin. ``metrics``: a JSON file for the query set's
    scores, ``predictions`` a TSV of its cells' predictions (:func:`evaluate_split`). Bad input raises
    :class:`InputError` before anything is written.
    """
    import torch

    from scatlas.models.embed import Embedder, EmbedParams

    if holdout not in HOLDOUTS:
        raise InputError("--holdout", f"must be {' or '.join(HOLDOUTS)}, not {holdout!r}")
    try:
        embed_params = EmbedParams.from_dict(
            {**(params or {}), "model": model, **({} if pretrain is None else {"pretrain": pretrain})}
        )
    except KeyError as err:
        raise InputError("--config", str(err).strip("\"'")) from None
    if threads:
        torch.set_num_threads(threads)
    adata = read_h5ad(input)
    counts, gene_names = raw_counts(adata, input)
    labels = single_labels(_obs_column(adata, label_key, input))
    studies = _obs_column(adata, study_key, input).astype(str)
    eligible = eligible_cells(labels, min_cells, input)
    if holdout == "study":
        side = study_split(labels[eligible], studies[eligible], input).to_numpy()
    else:
        side = np.full(int(eligible.sum()), "train", dtype=object)
    cells = np.flatnonzero(eligible)
    train = cells[side == "train"]
    n_types = labels.iloc[train].nunique()
    if n_types < 2:
        raise TooFewCells(input, f"training needs 2 or more cell types, the training cells have {n_types}")
    hvg = None
    if "highly_variable" in adata.var and len(gene_names) == adata.n_vars and (gene_names == adata.var_names).all():
        hvg = adata.var["highly_variable"].to_numpy(dtype=bool)
    terms = _type_terms(adata, labels, term_key)
    cl = None
    similarity = None
    if ontology:
        from scatlas.ontology import load_ontology
        from scatlas.ontology.similarity import similarity_matrix

        cl = load_ontology(ontology)
        train_types = sorted(set(labels.iloc[train]))
        similarity = similarity_matrix(cl, [terms.get(t, "") for t in train_types])
    embedder = Embedder(embed_params, seed, device).fit(
        counts[train],
        gene_names,
        labels.iloc[train].to_numpy(),
        studies.iloc[train].to_numpy(),
        adata.obs_names[train],
        highly_variable_genes=hvg,
        type_terms=terms,
        type_similarity_matrix=similarity,
        path=input,
    )
    split = pd.DataFrame(
        {
            "cell": adata.obs_names[cells].astype(str),
            "study": studies.iloc[cells].to_numpy(),
            "label": labels.iloc[cells].to_numpy(),
            "side": side,
        }
    )
    scores, table = evaluate_split(
        embedder, counts, gene_names, adata.obs_names, split, cl, path=input, threads=threads or 1
    )
    embedder.save(output, {SPLIT_FILE: lambda path: split.to_csv(path, sep="\t", index=False)})
    if metrics:
        write_json(metrics, scores)
    if predictions:
        write_predictions(predictions, table)
    return embedder, scores


def train_atlas_embedding(input, output, metrics, predictions=None, **options) -> dict:
    """The workflow's training: :func:`train_embedding`, or, when the atlas has too few labelled cells or
    studies (:class:`TooFewCells`), a warning, ``output/SKIPPED`` with the reason, ``metrics`` saying so and
    no row in ``predictions``."""
    from pathlib import Path

    try:
        return train_embedding(input, output, metrics=metrics, predictions=predictions, **options)[1]
    except TooFewCells as err:
        log.warning("embedding skipped: %s", err)
        scores = {"skipped": str(err), "n_query_cells": 0}
        output = Path(output)
        with atomic_output(output / "SKIPPED") as tmp:
            tmp.write_text(f"{err}\n")
        write_json(metrics, scores)
        if predictions:
            write_predictions(predictions, pd.DataFrame(columns=PREDICTION_COLUMNS))
        return scores


def evaluate_split(
    embedder, counts, gene_names, cell_names, split: pd.DataFrame, ontology=None, path="<input>", threads=1
) -> dict:
    """(query-set scores of a trained embedding (:func:`scatlas.embed.metrics.mapping_scores`) on the split's
    query cells of the training types, their predictions: ``cell``, ``predicted``, ``truth``, ``study``);
    ``{"n_query_cells": 0, ...}`` with a reason and no rows when there are none."""
    query = split[(split["side"] == "query") & split["label"].isin(embedder.types)]
    if query.empty:
        empty = pd.DataFrame(columns=PREDICTION_COLUMNS)
        return {"n_query_cells": 0, "note": "no held-out query cell of a training cell type"}, empty
    rows = pd.Index(np.asarray(cell_names).astype(str)).get_indexer(query["cell"])
    _, similarity, found, _ = embedder.query(counts[rows], gene_names, path, threads, RETRIEVAL_LIMIT)
    predicted = np.asarray(embedder.types, dtype=object)[similarity.argmax(axis=1)]
    train_codes = np.searchsorted(embedder.types, embedder.cells["label"].to_numpy())
    terms = embedder.type_terms if any(embedder.type_terms) else None
    scores = mapping_scores(
        query["label"].to_numpy(), predicted, embedder.types, train_codes[found], train_codes, terms, ontology
    )
    scores["query_studies"] = sorted(set(query["study"]))
    scores["n_training_cells"] = len(embedder.cells)
    table = pd.DataFrame(
        {"cell": query["cell"].to_numpy(), "predicted": predicted, "truth": query["label"].to_numpy()}
        | {"study": query["study"].to_numpy()}
    )
    return scores, table


PREDICTION_COLUMNS = ["cell", "predicted", "truth", "study"]


def write_predictions(path: str | os.PathLike, table: pd.DataFrame) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def write_json(path: str | os.PathLike, values: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


def _mapped(model_dir, input, device: str, threads: int):
    from scatlas.models.embed import Embedder

    embedder = Embedder.load(model_dir, device)
    adata = read_h5ad(input)
    counts, gene_names = raw_counts(adata, input)
    if counts.shape[0] == 0:
        raise InputError(input, "has no cells")
    embedding, similarity, found, _ = embedder.query(counts, gene_names, input, threads)
    return embedder, adata, embedding, similarity, found


def query_embedding(model_dir, input, output, device: str = "auto", threads: int = 1) -> pd.DataFrame:
    """``embed query``: the predictions TSV of the input's cells (:func:`predictions_table`)."""
    embedder, adata, _, similarity, _ = _mapped(model_dir, input, device, threads)
    table = predictions_table(adata.obs_names, similarity, embedder.types)
    with atomic_output(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table


def map_data(model_dir, input, outdir, device: str = "auto", threads: int = 1) -> pd.DataFrame:
    """``scatlas map``: ``outdir/predictions.tsv``, ``outdir/studies.tsv`` (per cell the atlas studies among its
    nearest training cells, with counts) and ``outdir/mapped.h5ad`` (the input with obsm['X_scatlas'],
    obs['scatlas_type'], obs['scatlas_score']). Every check runs before the first file is written."""
    from pathlib import Path

    embedder, adata, embedding, similarity, found = _mapped(model_dir, input, device, threads)
    table = predictions_table(adata.obs_names, similarity, embedder.types)
    study_names = sorted(set(embedder.cells["study"]))
    study_codes = np.searchsorted(study_names, embedder.cells["study"].to_numpy())
    studies = nearest_studies(adata.obs_names, study_codes[found], study_names)
    adata.obsm["X_scatlas"] = embedding
    adata.obs["scatlas_type"] = pd.Categorical(table["predicted"].to_numpy())
    adata.obs["scatlas_score"] = table["score"].to_numpy()
    adata.uns["scatlas_map"] = {"model": str(Path(model_dir).resolve()), "types": list(embedder.types)}
    outdir = Path(outdir)
    with atomic_output(outdir / "predictions.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_output(outdir / "studies.tsv") as tmp:
        studies.to_csv(tmp, sep="\t", index=False)
    with atomic_output(outdir / "mapped.h5ad") as tmp:
        adata.write_h5ad(tmp)
    return table
