"""Per-study label tables: each sample's most specific Cell Ontology terms and where they were read."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from scatlas.config import default
from scatlas.io import atomic_output
from scatlas.ontology.load import load_ontology
from scatlas.ontology.match import DEFAULT_SCOPES, UNINFORMATIVE_TERMS, Matcher, sample_fields

UNLABELLED = "unlabelled"
LABEL_COLUMNS = ["study", "sample", "cell_ontology_id", "cell_ontology_name", "label_source"]
SAMPLE_FIELDS = tuple(default("label.fields"))


def label_samples(samples: pd.DataFrame, matcher: Matcher, fields: Iterable[str] = SAMPLE_FIELDS) -> pd.DataFrame:
    """One row per sample with ``LABEL_COLUMNS``.

    ``cell_ontology_id`` / ``cell_ontology_name`` hold the most specific terms found ("|"-joined when a
    sample names several unrelated types); unmatched samples get an empty id and the name "unlabelled".
    ``label_source`` says, per term, the field and the name or synonym that matched, e.g.
    ``title: "B-cells" = B cell (NAME)``.
    """
    fields = tuple(fields)
    rows = []
    for record in samples.to_dict("records"):
        matches = sorted(matcher.match(sample_fields(record, fields)), key=lambda m: m.term_id)
        rows.append(
            {
                "study": record["study"],
                "sample": record["sample"],
                "cell_ontology_id": "|".join(m.term_id for m in matches),
                "cell_ontology_name": "|".join(m.term_name for m in matches) or UNLABELLED,
                "label_source": "; ".join(f'{m.field}: "{m.text}" = {m.synonym} ({m.scope})' for m in matches),
            }
        )
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def label_study(
    samples: pd.DataFrame,
    study: str,
    ontology: str | os.PathLike,
    output: str | os.PathLike,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    exclude: Iterable[str] = UNINFORMATIVE_TERMS,
    fields: Iterable[str] = SAMPLE_FIELDS,
) -> pd.DataFrame:
    """Write ``labels/{study}.tsv``: :func:`label_samples` on the study's rows of the samples table."""
    matcher = Matcher(load_ontology(ontology), scopes=scopes, exclude=exclude)
    labels = label_samples(samples[samples["study"] == study], matcher, fields)
    with atomic_output(output) as tmp:
        labels.to_csv(tmp, sep="\t", index=False)
    return labels
