"""scQuery's training / query split by study (scrna_nn ``scrna-nn-data-prep``): the query set is made of whole
held-out studies, so a study's batch effects never reach both sides."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from scatlas.io import InputError


class TooFewCells(InputError):
    """The labelled cells or studies are too few to train on or to split: bad input for ``embed train``,
    a stage with nothing to do for the workflow (its rule says so and succeeds)."""


SEPARATOR = "|"  # the label stage joins a cell's several terms with it: such a cell has no single label


def single_labels(labels: pd.Series, exclude=("", "unlabelled", "nan")) -> pd.Series:
    """The labels as strings, with NaN where a cell has none, several (``a|b``) or an excluded one."""
    text = labels.astype("string").fillna("")
    bad = text.isin(list(exclude)) | text.str.contains(SEPARATOR, regex=False)
    return text.where(~bad).astype(object)


def eligible_cells(labels: pd.Series, min_cells: int, path: str | os.PathLike = "<input>") -> np.ndarray:
    """Boolean mask of cells whose only label has at least ``min_cells`` cells (scQuery's filter); no such
    label raises :class:`InputError` naming ``path``."""
    single = single_labels(labels)
    counts = single.value_counts()
    kept = counts.index[counts >= min_cells]
    if len(kept) == 0:
        largest = f"the largest has {int(counts.iloc[0])}" if len(counts) else "no cell has a single label"
        raise TooFewCells(path, f"no cell type has {min_cells} or more cells ({largest}); lower --min-cells")
    return single.isin(kept).to_numpy()


def study_split(labels: pd.Series, studies: pd.Series, path: str | os.PathLike = "<input>") -> pd.Series:
    """``train`` / ``query`` per cell (of the eligible cells given), held out by study as scQuery did.

    Labels are taken largest first; for a label present in ≥ 2 studies the study holding its median number
    of cells (the lower of two) becomes a query study, unless that study already trains another label or
    no other study of the label would be left to train it. Every cell of a query study is a query cell,
    every other cell a training cell: no study is on both sides. Ties between studies of equal size break
    by study name, so the split is the same on every run.

    One study only, or no label in two studies, raises :class:`InputError` naming ``path``.
    """
    labels = pd.Series(np.asarray(labels, dtype=object), dtype=object)
    studies = pd.Series(np.asarray(studies).astype(str), dtype=object)
    if studies.nunique() < 2:
        raise TooFewCells(
            path, f"the cells come from {studies.nunique()} study: a held-out-study split needs 2 or more"
        )
    table = pd.crosstab(labels, studies)
    query: set[str] = set()
    train: set[str] = set()
    for label in table.sum(axis=1).sort_values(ascending=False, kind="stable").index:
        row = table.loc[label]
        present = row[row > 0]
        if len(present) < 2:
            continue
        ordered = sorted(present.index, key=lambda s: (present[s], s))
        held_out = ordered[(len(ordered) - 1) // 2]
        others = [s for s in ordered if s != held_out and s not in query]
        if held_out in train or not others:
            continue
        query.add(held_out)
        train.update(others)
    if not query:
        raise TooFewCells(path, "no cell type is present in 2 or more studies: nothing to hold out by study")
    return pd.Series(np.where(studies.isin(sorted(query)), "query", "train"), index=labels.index)
