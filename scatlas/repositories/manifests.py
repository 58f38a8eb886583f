"""The manifests: what the query stage found, kept across refreshes without loss or duplication.

``studies.tsv`` is an append-only history (first_seen, last_checked); ``samples.tsv``, ``runs.tsv``
and ``excluded.tsv`` are keyed tables where a record seen again replaces its earlier version and a
record not seen again stays. ``queries.tsv`` logs every successful query window; the next query
starts where the last one ended.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from scatlas.io import InputError, atomic_output
from scatlas.repositories.geo import METADATA_FIELDS

COLUMNS = {
    "studies": [
        "study",
        "source",
        "title",
        "organism",
        "published",
        "n_samples",
        "sra_study",
        "status",
        "first_seen",
        "last_checked",
    ],
    "samples": ["study", "sample", *METADATA_FIELDS, "sra_experiment"],
    "runs": [
        "study",
        "sample",
        "run",
        "layout",
        "fastq_1",
        "fastq_2",
        "read_count",
        "fastq_url_1",
        "fastq_url_2",
        "fastq_md5_1",
        "fastq_md5_2",
        "fastq_bytes_1",
        "fastq_bytes_2",
    ],
    "excluded": ["level", "accession", "study", "reason", "date"],
    "queries": ["source", "window_start", "window_end", "finished", "n_studies", "n_new"],
}
KEYS = {"studies": ["study"], "samples": ["sample"], "runs": ["run"], "excluded": ["level", "accession"]}


def read(directory: str | os.PathLike, name: str) -> pd.DataFrame:
    """One manifest as strings (empty table with its columns when the file does not exist yet)."""
    path = Path(directory) / f"{name}.tsv"
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS[name], dtype=str)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"unreadable manifest ({str(err).splitlines()[0] if str(err) else 'empty'})") from None
    missing = [c for c in COLUMNS[name] if c not in table.columns]
    if missing:
        raise InputError(path, f"manifest lacks column(s) {', '.join(missing)}")
    return table


def write(directory: str | os.PathLike, name: str, table: pd.DataFrame) -> Path:
    path = Path(directory) / f"{name}.tsv"
    extra = [c for c in table.columns if c not in COLUMNS[name]]
    with atomic_output(path) as tmp:
        table[COLUMNS[name] + extra].to_csv(tmp, sep="\t", index=False)
    return path


def upsert(old: pd.DataFrame, new: pd.DataFrame, name: str) -> pd.DataFrame:
    """``old`` with ``new``'s records replacing those with the same key, new keys appended in order."""
    key = KEYS[name]
    tables = [t.reindex(columns=COLUMNS[name]).fillna("").astype(str) for t in (old, new)]
    # groupby keeps keys in order of first appearance; last() takes the newest version of each
    return pd.concat(tables, ignore_index=True).groupby(key, sort=False, as_index=False).last()[COLUMNS[name]]


def record_studies(old: pd.DataFrame, seen: pd.DataFrame, today: str) -> pd.DataFrame:
    """Append-only study history: new studies get first_seen, every seen one last_checked = today."""
    seen = seen.reindex(columns=COLUMNS["studies"]).fillna("").astype(str).drop_duplicates("study", keep="last")
    first_seen = dict(zip(old["study"], old["first_seen"], strict=False))
    seen["first_seen"] = [first_seen.get(study, today) for study in seen["study"]]
    seen["last_checked"] = today
    return upsert(old, seen, "studies")


def remove(table: pd.DataFrame, name: str, keys: set) -> pd.DataFrame:
    """``table`` without the records whose key is in ``keys`` (e.g. a sample now excluded)."""
    index = table.set_index(KEYS[name]).index
    return table[~index.isin(list(keys))].reset_index(drop=True)


def last_window_end(directory: str | os.PathLike, source: str) -> str | None:
    """End date of the last successful query of ``source``, or None if there was none."""
    queries = read(directory, "queries")
    ends = queries.loc[queries["source"] == source, "window_end"]
    return max(ends) if len(ends) else None
