"""How well query cells are mapped: accuracy and macro-F1 of the predicted type, and scQuery's retrieval
scores over the ranked nearest training cells, MAP and MAFP (mean average flexible precision, relevance =
the Cell Ontology similarity of the two types; METHODS-REFERENCE 4d)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from scatlas.ontology.similarity import similarity_matrix

RETRIEVAL_LIMIT = 100  # scQuery's longest retrieval list


def retrieval_depth(train_codes: np.ndarray, query_codes: np.ndarray, limit: int = RETRIEVAL_LIMIT) -> int:
    """scQuery's R: ``min(limit, fewest training cells of any query type)``."""
    counts = np.bincount(train_codes)
    present = np.unique(query_codes)
    return int(min(limit, counts[present].min())) if present.size else limit


def average_flexible_precision(relevance: np.ndarray) -> np.ndarray:
    """Per query (rows of ranked relevances, NaN = unknown, skipped): mean over scored positions k of
    ``Σ_{j ≤ k} rel_j / k`` (k counting scored positions); 0 when none is scored."""
    scored = ~np.isnan(relevance)
    rel = np.where(scored, relevance, 0.0)
    position = np.cumsum(scored, axis=1)
    precision = np.where(scored, np.cumsum(rel, axis=1) / np.maximum(position, 1), 0.0)
    n_scored = scored.sum(axis=1)
    return np.where(n_scored > 0, precision.sum(axis=1) / np.maximum(n_scored, 1), 0.0)


def retrieval_scores(truth: np.ndarray, ranked: np.ndarray, similarity: np.ndarray | None = None) -> dict:
    """MAP and MAFP (weighted by query cells and unweighted over types) of ranked neighbour types.

    ``truth``: query type codes (cells,); ``ranked``: cells × R codes of the nearest training cells, nearest
    first; ``similarity``: types × types relevance of a different type (NaN unknown); without it MAFP is
    left out. MAP is the same average with relevance 1 for the same type and 0 otherwise.
    """
    same = (ranked == truth[:, None]).astype(float)
    scores = {"map": _per_type_means(truth, average_flexible_precision(same))}
    if similarity is not None:
        relevance = np.where(same == 1, 1.0, similarity[truth[:, None], ranked])
        scores["mafp"] = _per_type_means(truth, average_flexible_precision(relevance))
    out = {}
    for name, (weighted, unweighted) in scores.items():
        out[name] = weighted
        out[f"{name}_unweighted"] = unweighted
    return out


def _per_type_means(truth: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    types = np.unique(truth)
    return float(values.mean()), float(np.mean([values[truth == t].mean() for t in types]))


def classification_scores(truth, predicted) -> dict:
    """Accuracy and macro-F1 (over the query's true types) of predicted cell types."""
    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    labels = sorted(set(truth))
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
    }


def mapping_scores(
    truth,
    predicted,
    types: list[str],
    ranked: np.ndarray,
    train_codes: np.ndarray,
    terms: list[str] | None = None,
    ontology=None,
) -> dict:
    """Every score of a mapping of query cells whose true types are among the training ``types``.

    ``ranked``: cells × ≥ R training-cell type codes, nearest first (cut to scQuery's R here); ``terms``: the
    types' Cell Ontology ids and ``ontology`` the ontology (for MAFP; left out without them).
    """
    truth = np.asarray(truth).astype(str)
    codes = np.searchsorted(types, truth)
    depth = retrieval_depth(train_codes, codes)
    similarity = similarity_matrix(ontology, terms) if ontology is not None and terms is not None else None
    return {
        **classification_scores(truth, predicted),
        **retrieval_scores(codes, ranked[:, :depth], similarity),
        "retrieval_depth": depth,
        "n_query_cells": len(truth),
        "n_query_types": len(set(truth)),
    }
