"""A query cell's similarity to each cell type and its nearest studies, from its nearest training cells
(SPEC 2.4, scQuery)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scatlas.nn.embed import type_similarity  # noqa: F401 - the similarity rule, beside the networks


def predictions_table(cells, similarity: np.ndarray, types) -> pd.DataFrame:
    """``cell``, ``predicted`` (the type of highest similarity), ``score`` (its share), then one column per
    type with the normalised similarity (SPEC 6, ``embed query``)."""
    types = [str(t) for t in types]
    best = similarity.argmax(axis=1)
    table = pd.DataFrame(
        {
            "cell": np.asarray(cells).astype(str),
            "predicted": np.asarray(types, dtype=object)[best],
            "score": similarity[np.arange(len(best)), best],
        }
    )
    return pd.concat([table, pd.DataFrame(similarity, columns=types)], axis=1)


def nearest_studies(cells, neighbour_studies: np.ndarray, studies) -> pd.DataFrame:
    """Long table ``cell``, ``study``, ``neighbours``: per query cell, each atlas study among its nearest
    training cells with how many of them it holds, most first (ties by study name).

    ``neighbour_studies``: cells × k study codes into ``studies``.
    """
    cells = np.asarray(cells).astype(str)
    studies = np.asarray(studies).astype(str)
    n, k = neighbour_studies.shape
    counts = np.zeros((n, len(studies)), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), k), neighbour_studies.ravel()), 1)
    cell_index, study_index = np.nonzero(counts)
    table = pd.DataFrame(
        {"cell": cells[cell_index], "study": studies[study_index], "neighbours": counts[cell_index, study_index]}
    )
    table["_order"] = cell_index
    table = table.sort_values(["_order", "neighbours", "study"], ascending=[True, False, True], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)
